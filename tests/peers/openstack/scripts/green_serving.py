"""What the eventlet-based peer scripts (Nova, Cinder) share: announce the port, then run until told to stop.

Stopping is SIGTERM, SIGINT or the end of standard input (a pipe from the tests: a dead parent never
leaves the server behind). Imported by those scripts from their own directory, under their venv's python.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import eventlet


def announce(ready: Path, port: int) -> None:
    """Write the ready file atomically: the tests poll it for the port."""
    staging = ready.with_suffix(".tmp")
    staging.write_text(json.dumps({"port": port, "pid": os.getpid()}))
    staging.rename(ready)


def run_until_stopped() -> None:
    """Return once a stop signal comes or standard input closes."""
    # Set from a signal handler or a greenthread and polled: a plain flag, no lock a handler could block on.
    stopping = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_stdin() -> None:
        while os.read(0, 4096):  # green under eventlet: yields until the pipe has data or closes
            pass
        stopping["now"] = True

    eventlet.spawn(watch_stdin)
    while not stopping["now"]:
        eventlet.sleep(0.1)
