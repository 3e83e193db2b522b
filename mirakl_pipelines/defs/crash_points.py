"""Named points where the exactly-once tests kill the process: between an API call and its ledger write."""

import os

CRASH_ENV = "MIRAKL_PIPELINES_CRASH_AT"
CRASH_EXIT_CODE = 70


def crash_point(name: str) -> None:
    """Exit at once, without cleanup, when ``MIRAKL_PIPELINES_CRASH_AT`` names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(CRASH_EXIT_CODE)
