"""Access to the contracts in ../shared/reference/: tests that need them skip, saying why, when absent."""

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference"


def reference_file(relative: str) -> Path:
    """Path of a reference file, or skip the calling test when ../shared/ is not beside the project."""
    path = REFERENCE / relative
    if not path.exists():
        pytest.skip(f"contract file ../shared/reference/{relative} is absent (the project is not beside shared/)")
    return path
