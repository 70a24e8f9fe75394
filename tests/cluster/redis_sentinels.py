"""A Redis master, its replica and three sentinels (Debian's ``redis-sentinel``) on loopback, for failover checks.

The sentinels decide quickly (``DOWN_AFTER_MS``) so a failover takes a few seconds; ``stop()`` ends every
process that was started, whatever state the failover left them in.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
from netutil import free_port
from redis_process import RedisProcess

SERVICE = "mymaster"
SENTINELS = 3
QUORUM = 2
#: a master silent this long is down for a sentinel; with the quorum's agreement the failover starts
DOWN_AFTER_MS = 1000
#: a failover that has not ended by then is given up and may be tried again (by another sentinel)
FAILOVER_TIMEOUT_MS = 4000
#: seconds the set has to come up (replica in sync, sentinels aware of it and of each other)
START_BOUND = 30.0

SENTINEL_CONF = """port {port}
bind 127.0.0.1
daemonize no
dir {dir}
sentinel resolve-hostnames no
sentinel monitor {service} 127.0.0.1 {master_port} {quorum}
sentinel down-after-milliseconds {service} {down_after}
sentinel failover-timeout {service} {failover_timeout}
sentinel parallel-syncs {service} 1
"""


def sentinel_binary() -> str:
    found = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
    assert os.access(found, os.X_OK), "redis-sentinel is not installed (.ci/run installs Debian's redis-sentinel)"
    return found


class SentinelSet:
    """Master, replica, sentinels; ``url`` is the gateway's ``redis+sentinel://`` URL for them."""

    def __init__(self, workdir: Path) -> None:
        self.sentinel_procs: list[subprocess.Popen[bytes]] = []
        sync = ("--repl-diskless-sync-delay", "0")
        self.master = RedisProcess(workdir / "master", *sync)
        self.servers = [self.master]
        try:
            self.replica = RedisProcess(workdir / "replica", *sync, "--replicaof", "127.0.0.1", str(self.master.port))
            self.servers.append(self.replica)
            self._await(lambda: self._online_replicas(self.master.port) == 1, "the replica did not come in sync")
            self.sentinel_ports = [free_port() for _ in range(SENTINELS)]
            for port in self.sentinel_ports:
                self._start_sentinel(workdir / f"sentinel-{port}", port)
            self._await(self._sentinels_ready, "the sentinels did not find the replica and each other")
        except BaseException:
            self.stop()
            raise
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        self.url = f"redis+sentinel://{hosts}/{SERVICE}/0"

    def _start_sentinel(self, workdir: Path, port: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "sentinel.conf"  # sentinels rewrite their own config: each has its own file
        conf.write_text(
            SENTINEL_CONF.format(
                port=port,
                dir=workdir,
                service=SERVICE,
                master_port=self.master.port,
                quorum=QUORUM,
                down_after=DOWN_AFTER_MS,
                failover_timeout=FAILOVER_TIMEOUT_MS,
            )
        )
        log = (workdir / "sentinel.log").open("wb")
        self.sentinel_procs.append(subprocess.Popen([sentinel_binary(), str(conf)], stdout=log, stderr=log))
        log.close()

    def _sentinels_ready(self) -> bool:
        for port in self.sentinel_ports:
            try:
                state = self._ask(port, "SENTINEL", "MASTER", SERVICE)
            except redis.RedisError:
                return False
            info = state if isinstance(state, dict) else dict(zip(state[::2], state[1::2], strict=True))
            if int(info.get("num-slaves", 0)) < 1 or int(info.get("num-other-sentinels", 0)) < SENTINELS - 1:
                return False
        return True

    def master_address(self) -> tuple[str, int] | None:
        """Where the sentinels (a quorum of those answering) say the master is now."""
        seen: list[tuple[str, int]] = []
        for port in self.sentinel_ports:
            try:
                host, master_port = self._ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
            except (redis.RedisError, ValueError):
                continue
            seen.append((host, int(master_port)))
        for address in seen:
            if seen.count(address) >= QUORUM:
                return address
        return None

    def calls(self, command: str) -> int:
        """How many times the master has run ``command`` (its ``INFO commandstats``)."""
        stats = self._ask(self.master.port, "INFO", "commandstats")
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))

    def kill_master(self) -> None:
        """SIGKILL the master: it dies with whatever it had not yet sent its replica."""
        self.master.kill()

    def await_failover(self, bound: float) -> float:
        """Seconds until a quorum of sentinels names the replica as master (AssertionError past ``bound``)."""
        start = time.monotonic()
        self._await(lambda: self.master_address() == ("127.0.0.1", self.replica.port), "no failover", bound)
        return time.monotonic() - start

    def stop(self) -> None:
        for proc in self.sentinel_procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.sentinel_procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for server in self.servers:
            server.stop()

    @staticmethod
    def _ask(port: int, *command: Any) -> Any:
        client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)
        try:
            return client.execute_command(*command)
        finally:
            client.close()

    @staticmethod
    def _online_replicas(port: int) -> int:
        try:
            role = SentinelSet._ask(port, "ROLE")
        except redis.RedisError:
            return 0
        return len(role[2]) if role[0] == "master" else 0

    @staticmethod
    def _await(ready: Any, what: str, bound: float = START_BOUND) -> None:
        deadline = time.monotonic() + bound
        while not ready():
            assert time.monotonic() < deadline, f"{what} within {bound:.0f}s"
            time.sleep(0.05)
