"""Named crash points for the reliability tests: kill this process at a precise step.

Set TELELAKE_FAILPOINT=<name> (and, for `*.during*` points, TELELAKE_FAILPOINT_DELAY_MS) in the
environment of a job to make it SIGKILL itself there. Unset, `hit` costs one dict lookup.
"""
from __future__ import annotations

import os
import signal
import threading

ENV = "TELELAKE_FAILPOINT"


def hit(name: str) -> None:
    """Die now if the failpoint `name` is armed; for a `during` point, die after the delay."""
    if os.environ.get(ENV) != name:
        return
    delay_s = int(os.environ.get(f"{ENV}_DELAY_MS", "0")) / 1000
    if delay_s <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
    timer = threading.Timer(delay_s, os.kill, args=(os.getpid(), signal.SIGKILL))
    timer.daemon = True
    timer.start()
