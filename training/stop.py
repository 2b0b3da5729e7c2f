"""Ending a run early on request, cleanly: at the next step boundary, with a validation, a saved
checkpoint and result.json, as if its schedule had ended there.

Three ways to ask, for the places runs live:
- SIGTERM (a scheduler's or `kill`'s polite stop; preemptible machines send it before they go);
- a first Ctrl-C (SIGINT) in a terminal; a second one interrupts at once, as Python's default does;
- a file named STOP in the run directory (`touch runs/<run>/STOP`), for a job under nohup or
  spark-submit on another host, or a rank whose signals are out of reach. It is removed when honoured,
  so a later `--resume` of the run trains on.

Every rank stops at the same step: the request is summed over the ranks at each step boundary.
"""
from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

log = logging.getLogger(__name__)

STOP_FILE = "STOP"
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Watches for a stop request while a `with` block trains; `reason()` is the request or None."""

    def __init__(self, run_dir: str | Path) -> None:
        self.file = Path(run_dir) / STOP_FILE
        self._reason: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for s in _SIGNALS:
                self._previous[s] = signal.signal(s, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame) -> None:
        if self._reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now, without the final checkpoint
        self._reason = signal.Signals(signum).name
        log.warning("%s received: the run ends after this step (validation, checkpoint, result.json)%s",
                    self._reason, "; Ctrl-C again to interrupt at once" if signum == signal.SIGINT else "")

    def local(self) -> str | None:
        """This process's request: the signal it got, else 'STOP file' when the file exists."""
        if self._reason is None and self.file.is_file():
            self._reason = f"{STOP_FILE} file"
        return self._reason

    def agreed(self, sum_over_ranks) -> str | None:
        """The request any rank has (`sum_over_ranks`: float → float over the world), the same on all."""
        mine = self.local()
        if sum_over_ranks(1.0 if mine else 0.0) == 0:
            return None
        return mine or "another rank's request"

    def consume(self) -> None:
        """The request was honoured: remove the file, so resuming the run does not stop it again."""
        self.file.unlink(missing_ok=True)
