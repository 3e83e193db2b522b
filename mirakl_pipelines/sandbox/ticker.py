"""A step called every few seconds in a background thread: the sandbox's warehouse and shop floor act this way."""

import collections
import logging
import threading
from typing import Callable


class Ticker:
    """Calls `step` every `interval_seconds` in a daemon thread until `stop()`. A step that raises is logged and
    counted in `errors` and the ticking goes on: one bad record must not stop a simulator."""

    def __init__(self, name: str, step: Callable[[], object], log: logging.Logger):
        self.name, self.step, self.log = name, step, log
        self.errors: collections.Counter = collections.Counter()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self, interval_seconds: float) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running")
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval_seconds):
                try:
                    self.step()
                except Exception:
                    self.log.exception("%s step failed", self.name)
                    self.errors["step failed"] += 1

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
