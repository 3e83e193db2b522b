"""Where a running demo says it is, so that commands run from the project (`mirakl-pipelines exceptions`) read
the demo's configuration instead of `data/marketplaces.yaml`.

The demo writes `<workdir>/running.json` (its pid, UI port and configuration file) while it runs and removes it
when it stops; a record whose process is gone is ignored.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mirakl_pipelines.config import PROJECT_ROOT

DEFAULT_WORKDIR = ".demo"
RECORD_NAME = "running.json"


@dataclass(frozen=True)
class RunningDemo:
    pid: int
    port: int
    config: Path
    workdir: Path


def record(workdir: Path, config: Path, port: int) -> Path:
    path = workdir / RECORD_NAME
    path.write_text(json.dumps({"pid": os.getpid(), "port": port, "config": str(config)}))
    return path


def clear(workdir: Path) -> None:
    (workdir / RECORD_NAME).unlink(missing_ok=True)


def default_workdirs() -> list[Path]:
    """The default work directory of a demo started from the current directory, or from the project root."""
    dirs = [Path.cwd() / DEFAULT_WORKDIR, PROJECT_ROOT / DEFAULT_WORKDIR]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def find(workdirs: list[Path] | None = None) -> RunningDemo | None:
    """The demo running in one of `workdirs` (default: `default_workdirs()`), if any."""
    for workdir in workdirs if workdirs is not None else default_workdirs():
        try:
            data = json.loads((workdir / RECORD_NAME).read_text())
            demo = RunningDemo(int(data["pid"]), int(data["port"]), Path(data["config"]), workdir)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(demo.pid) and demo.config.exists():
            return demo
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, but not a demo of ours
        return False
    return True
