"""A real Redis Cluster on loopback: six ``redis-server --cluster-enabled yes`` (three masters, each with a
replica) joined by ``redis-cli --cluster create``; ``stop()`` ends every server it started."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

#: a failed master is noticed, and its replica promoted, about this long after it stops answering (ms)
NODE_TIMEOUT_MS = 1000
#: bound on the cluster forming (or healing) before a fixture gives up
BOUND = 60.0


def _binary(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed (Debian's redis-server package has it; .ci/run installs it)"
    return found


def _free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports nobody listens on (all held open while picked, so none repeats)."""
    held = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


@dataclass(slots=True)
class Server:
    """One cluster node: its client port, its cluster-bus port and its process."""

    port: int
    bus_port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        # Every port is picked free (the bus's too: the default port + 10000 may be taken, or past 65535).
        args = [_binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-port", str(self.bus_port),
                "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--save", "", "--appendonly", "no", "--dir", str(self.workdir), "--logfile", "redis.log",
                "--repl-diskless-sync-delay", "0", "--daemonize", "no"]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def kill(self) -> None:
        """SIGKILL, as a lost machine: nothing flushed, nothing said to the other nodes."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class LocalRedisCluster:
    """Three masters and three replicas on free loopback ports, formed and serving every slot on return."""

    def __init__(self, workdir: Path, masters: int = 3) -> None:
        self.servers: list[Server] = []
        try:
            ports = _free_ports(masters * 4)
            for i in range(masters * 2):
                (workdir / str(i)).mkdir(parents=True, exist_ok=True)
                server = Server(ports[2 * i], ports[2 * i + 1], workdir / str(i))
                self.servers.append(server)
                server.start()
            for server in self.servers:
                self._until(lambda s=server: self._answers(s), f"{server.name} never answered", 10)
            create = [_binary("redis-cli"), "--cluster", "create", *(s.name for s in self.servers),
                      "--cluster-replicas", "1", "--cluster-yes"]  # fmt: skip
            done = subprocess.run(create, capture_output=True, text=True, timeout=BOUND)
            assert done.returncode == 0, f"redis-cli --cluster create failed:\n{done.stdout}\n{done.stderr}"
            self.wait_ok()
            # A replica that never synced cannot take over: wait for every link (the first sync starts at once).
            self._until(lambda: sum(self._linked(s) for s in self.servers) == masters, "replicas never synced")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        """The gateway's URL of this cluster: every node a seed."""
        return "redis-cluster://" + ",".join(s.name for s in self.servers)

    def client(self) -> RedisCluster:
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", s.port) for s in self.servers], socket_timeout=2)

    def replica_of(self, master: Server) -> Server:
        """The live server replicating ``master`` now."""
        for server in self.servers:
            if server is not master and server.alive():
                with server.client() as c:
                    info = c.info("replication")
                if info.get("role") == "slave" and int(info.get("master_port", 0)) == master.port:
                    return server
        raise AssertionError(f"{master.name} has no replica")

    def is_master(self, server: Server) -> bool:
        try:
            with server.client() as c:
                return bool(c.info("replication").get("role") == "master")
        except redis.RedisError:
            return False

    def wait_ok(self, bound: float = BOUND) -> None:
        """Until every live node says ``cluster_state:ok`` (every slot served by a master that answers)."""
        self._until(lambda: all(self._state(s) == "ok" for s in self.servers if s.alive()), "cluster never ok", bound)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    @staticmethod
    def _answers(server: Server) -> bool:
        assert server.alive(), f"redis-server {server.name} exited"
        try:
            with server.client() as c:
                return bool(c.ping())
        except redis.RedisError:
            return False

    @staticmethod
    def _linked(server: Server) -> bool:
        """Whether ``server`` is a replica in sync with its master."""
        try:
            with server.client() as c:
                return bool(c.info("replication").get("master_link_status") == "up")
        except redis.RedisError:
            return False

    @staticmethod
    def _state(server: Server) -> str:
        try:
            with server.client() as c:
                return str(c.cluster("info").get("cluster_state", ""))
        except redis.RedisError:
            return ""

    @staticmethod
    def _until(ready: object, what: str, bound: float = BOUND) -> None:
        deadline = time.monotonic() + bound
        while not ready():  # type: ignore[operator]
            assert time.monotonic() < deadline, what
            time.sleep(0.05)
