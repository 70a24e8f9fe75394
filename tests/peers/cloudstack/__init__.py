"""A CloudStack API simulator on loopback, for the CloudStack backend's tests (see ``server.py``).

``CloudStackSimulator(workdir, config)`` starts ``python -m peers.cloudstack.server`` on a free port with
``config`` (accounts with API and secret keys and projects, zones, templates, offerings, timings, faults;
missing keys take ``server.DEFAULT_CONFIG``) and waits until it answers; ``stop()`` ends it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from netutil import free_port

START_TIMEOUT = 30.0
TESTS = Path(__file__).resolve().parents[2]


class CloudStackSimulator:
    """One simulator process; ``endpoint`` is its ``/client/api`` URL, ``keys(name)`` an account's key pair."""

    def __init__(self, workdir: Path, config: dict[str, Any] | None = None) -> None:
        from peers.cloudstack.server import DEFAULT_CONFIG  # not at import: ``-m`` runs that module

        self.config = {**DEFAULT_CONFIG, **(config or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.endpoint = f"{self.url}/client/api"
        config_file = workdir / f"cloudstack.{self.port}.json"
        config_file.write_text(json.dumps(self.config))
        self.log = workdir / f"cloudstack.{self.port}.log"
        self._log_file = self.log.open("wb")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "peers.cloudstack.server", "--port", str(self.port), "--config", str(config_file)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the CloudStack simulator did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_simulator/ping", timeout=2) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def keys(self, account: str) -> tuple[str, str]:
        """``(apikey, secretkey)`` of the configured account ``account``."""
        spec = next(a for a in self.config["accounts"] if a["name"] == account)
        return spec["apikey"], spec["secretkey"]

    def _control(self, what: str, data: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.url}/_simulator/{what}",
            data=json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def set_faults(self, **faults: Any) -> None:
        """Fractions of calls to ``drop``, ``lose`` (run, answer lost), ``fail`` (530) or ``stall``
        (``stall_seconds``), optionally only for ``commands``, drawn from ``seed``; no argument clears them."""
        self._control("faults", faults)

    def set_timings(self, **timings: float) -> None:
        """Seconds of each transition (keys of ``server.DEFAULT_TIMINGS``)."""
        self._control("timings", timings)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        self._log_file.close()
