"""Several ``cloudgate serve`` nodes behind a real nginx, configured from conf/examples/nginx.conf."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from gateway_process import GatewayProcess
from netutil import free_port

REPO = Path(__file__).resolve().parents[2]
NGINX_EXAMPLE = REPO / "conf" / "examples" / "nginx.conf"
_UPSTREAM_SERVER = re.compile(r"^(?P<indent>[ \t]*)server 127\.0\.0\.1:\d+(?P<params>[^;]*);\n", re.M)


def nginx_config(example: str, node_ports: Sequence[int], listen_port: int, workdir: Path) -> str:
    """The example with our nodes, a loopback port and every path in ``workdir``; fails if the example drifts."""
    servers = list(_UPSTREAM_SERVER.finditer(example))
    assert servers, "conf/examples/nginx.conf has no 'server 127.0.0.1:PORT ...;' upstream lines"
    first = servers[0]
    ours = "".join(f"{first['indent']}server 127.0.0.1:{port}{first['params']};\n" for port in node_ports)
    text = example[: first.start()] + ours + _UPSTREAM_SERVER.sub("", example[first.start() :])
    temps = "".join(
        f"    {name}_temp_path {workdir / name};\n" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    edits = [
        (r"\n\s*listen 80;", f"\n        listen 127.0.0.1:{listen_port};"),
        (r"worker_processes auto;", "worker_processes 1;"),
        (r"access_log \S+;", f"access_log {workdir / 'access.log'};"),
        (r"\nhttp \{\n", "\nhttp {\n" + temps),
    ]
    for pattern, replacement in edits:
        text, count = re.subn(pattern, lambda _m, r=replacement: r, text)
        assert count == 1, f"conf/examples/nginx.conf: expected one match of {pattern!r}"
    return text


class Nginx:
    """A real nginx in the foreground on a free loopback port; ``stop()`` ends it."""

    def __init__(self, workdir: Path, node_ports: Sequence[int]) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        assert os.access(binary, os.X_OK), "nginx is not installed (.ci/run installs Debian's nginx)"
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = workdir / "nginx.conf"
        conf.write_text(nginx_config(NGINX_EXAMPLE.read_text(), node_ports, self.port, workdir))
        directives = f"daemon off; pid {workdir / 'nginx.pid'};"
        if os.geteuid() == 0:
            directives += " user root;"  # its workers must reach the private temp dirs under workdir
        self.error_log = workdir / "error.log"
        args = [binary, "-p", str(workdir), "-c", str(conf), "-e", str(self.error_log), "-g", directives]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        # Started once it accepts connections: a probe request would reach the nodes, and any not yet up would be
        # left out for fail_timeout seconds (then nginx answers 502 at once: "no live upstreams").
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start:\n{self.error_log.read_text(errors='replace')}")
            time.sleep(0.05)

    def client(self, key: str = "demo", secret: str = "demo-secret", **config: Any) -> Any:
        """A boto3 EC2 client (the demo user unless named), through nginx."""
        return boto3.client(
            "ec2",
            endpoint_url=self.url,
            region_name="local-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(**config),
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGQUIT)  # nginx's graceful stop
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def kill_node(node: GatewayProcess) -> None:
    """SIGKILL a node's whole process group (master and workers at once), as a lost machine would."""
    os.killpg(node.proc.pid, signal.SIGKILL)
    node.proc.wait(10)
