"""A peer server process: its own process group (gunicorn forks workers), its output in a log file, stopped for sure."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from netutil import free_port

from .venvs import clean_env

SCRIPTS = Path(__file__).resolve().parent / "scripts"
STOP_GRACE = 15.0  # seconds between SIGTERM and SIGKILL
PORT_ATTEMPTS = 3  # gunicorn peers choose a free port before binding it: so many tries


class PeerProcess:
    """One server subprocess; ``stop()`` ends it and everything it forked, and runs at exit if nobody called it."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        log: Path,
        cwd: Path,
        env: Mapping[str, str],
        stdin_pipe: bool = False,
    ) -> None:
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        atexit.register(self.stop)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_until(self, ready: Callable[[], Any], what: str, timeout: float) -> Any:
        """Poll ``ready()`` until it returns something truthy; fail early if the process dies, late on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = ready()
            if value:
                return value
            if not self.alive():
                raise RuntimeError(f"{what} exited with code {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{what} not ready after {timeout:.0f}s:\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after a grace period; safe to call twice."""
        atexit.unregister(self.stop)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_GRACE)
        # Workers of a stopped master may linger; the group id is the leader's pid.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.alive():
            self.proc.wait(5)
        self._out.close()


class Peer:
    """A running peer server: ``url`` its endpoint, ``stop()`` ends its process (idempotent)."""

    def __init__(self, url: str, workdir: Path, process: PeerProcess, startup: float) -> None:
        self.url = url
        self.workdir = workdir
        self.process = process
        self.startup_seconds = startup

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, pid={self.process.pid})"

    def stop(self) -> None:
        self.process.stop()


def ready_port(ready: Path) -> int | None:
    """The port a peer script wrote to its ready file once serving; None until then."""
    try:
        return int(json.loads(ready.read_text())["port"])
    except (OSError, ValueError, KeyError):
        return None


def start_script(
    python: Path, script: str, args: Sequence[str], workdir: Path, timeout: float, env: Mapping[str, str]
) -> tuple[PeerProcess, int]:
    """Run one of ``scripts/`` in a peer's venv; the process and the port it serves on.

    The script writes ``workdir/ready.json`` (its port) once serving, and exits when its standard input
    closes, so a test process that dies without stopping it leaves nothing behind.
    """
    ready = workdir / "ready.json"
    ready.unlink(missing_ok=True)
    process = PeerProcess(
        [str(python), str(SCRIPTS / script), *args],
        log=workdir / f"{Path(script).stem.replace('_', '-')}.out",
        cwd=workdir,
        env=env,
        stdin_pipe=True,
    )
    return process, process.wait_until(lambda: ready_port(ready), script, timeout)


def start_gunicorn(
    venv: Path,
    app: str,
    workdir: Path,
    env: Mapping[str, str],
    *,
    workers: int,
    prepare: Callable[[int], str],
    ready: Callable[[str], bool],
    timeout: float,
) -> tuple[PeerProcess, str]:
    """Serve a WSGI ``app`` of ``scripts/`` with the venv's gunicorn on a free loopback port; the process and
    the URL ``prepare(port)`` made (after writing whatever config names that URL).

    A free port can be taken between choosing it and gunicorn binding it: then another one is tried.
    Sync workers answer "Connection: close", so no client reuses an idle keep-alive connection just as
    the server drops it; ``gunicorn_conf.py`` stops the master when our stdin pipe closes.
    """
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        url = prepare(port)
        command = [
            str(venv / "bin" / "gunicorn"),
            *("--config", str(SCRIPTS / "gunicorn_conf.py"), "--pythonpath", str(SCRIPTS)),
            *("--bind", f"127.0.0.1:{port}", "--worker-class", "sync", "--workers", str(workers)),
            *("--timeout", "120", "--graceful-timeout", "5"),
            app,
        ]
        process = PeerProcess(command, log=workdir / "gunicorn.log", cwd=workdir, env=env, stdin_pipe=True)
        try:
            process.wait_until(lambda url=url: ready(url), f"{app} (gunicorn)", timeout)
            return process, url
        except RuntimeError:
            process.stop()
            if attempt == PORT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def run_manage(venv: Path, tool: str, conf: Path, *args: str) -> None:
    """Run one ``<service>-manage`` setup step of a venv; its output goes to ``<tool>.log`` in the workdir."""
    log = conf.parent / f"{tool}.log"
    with log.open("a") as out:
        done = subprocess.run(
            [str(venv / "bin" / tool), "--config-file", str(conf), *args],
            cwd=conf.parent,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{tool} {args[0] if args else ''} failed:\n{tail}")


def answers(url: str, statuses: tuple[int, ...] = (200,)) -> bool:
    """Whether an HTTP server answers ``url`` with one of ``statuses`` (a readiness probe)."""
    try:
        return requests.get(url, timeout=2).status_code in statuses
    except requests.RequestException:
        return False
