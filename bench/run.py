"""The read-performance goals (issue 13), each measured against its baseline in this one run, as one table.

    python bench/run.py [--seconds 5] [--big 10000] [--workers 2] [--goals 1234]

Starts everything itself on loopback and stops it at the end: redis-servers, ``cloudgate serve`` processes
(simulator backend, and the ``ec2`` backend on a moto server), a bare falcon app under the gateway's own
gunicorn settings, moto's server. ``wrk`` drives every throughput figure on presigned SigV4 GET URLs (EC2)
or Basic-authenticated GETs (CIMI, OCCI), so the load generator is not the limit.

Goals (figure / baseline -> ratio, against the target):
 1. a cached DescribeInstances of 50 instances: req/s over the bare app serving the same bytes (>= 0.5)
    and over moto's server listing the same 50 (>= 100);
 2. the first page of 100 (MaxResults=100) when the account holds ``--big`` machines, over the same page
    when it holds 100 (p50 latency, <= 1.5); a listing after the cache TTL over a cached one (p50, <= 2);
    the largest worker RSS once the big account has been listed (<= 150 MB, no baseline);
 3. CIMI (JSON, XML) and OCCI (text/plain, text/occi, JSON) reads of the 50, over EC2's (time per request,
    <= 1.5 each);
 4. what the gateway adds (p50 ms, a difference, not a ratio): an uncached read over the same backend call
    made directly (simulator's Python API; moto through boto3), on a gateway caching nothing (<= 1.5 ms);
    RunInstances of 1 and TerminateInstances over the direct calls, on a gateway with the shipped cache
    settings (<= 3 ms). Direct and gateway calls alternate; on moto both launch with the same type and zone.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO), str(REPO / "tests")]

from bench_ec2_gateway import (  # noqa: E402
    DIRECT,
    Server,
    http_server,
    redis_server,
    wrk_load,
)
from peers.moto_server import ACCESS_KEY, SECRET_KEY, MotoServer  # noqa: E402

from gateway.app import build_runtime  # noqa: E402
from gateway.config import load  # noqa: E402
from translator.model import MachineAction, MachineSpec, Principal  # noqa: E402

REGION = "local-1"
#: the shipped ``cache_ttl``, ``transitional_cache_ttl`` (conf/gateway.toml): mutations are measured as a
#: default gateway makes them
DEFAULT_TTLS = (5.0, 1.0)
MOTO_REGION = "moto-1"
LISTED = 50
SMALL = 100
PAGE = 100
#: tenant -> (access key, secret); each tenant is one account of the simulator (moto: of the ec2 backend)
USERS = {name: (name, f"{name}-secret") for name in ("bench", "small", "big", "direct", "moto")}

CONFIG = """
[gateway]
workers = {workers}
threads = 4
redis_url = "{redis_url}"
log_level = "warning"

[translator]
cache_ttl = {ttl}
transitional_cache_ttl = {transitional}

[backends.sim]
driver = "simulator"
boot_delay = 0.0
max_machines = 1000000
terminated_retention = 0.0
"""
MOTO_BACKEND = """
[backends.aws]
driver = "ec2"
endpoint_url = "{moto_url}"
aws_region = "us-east-1"
instance_types = ["t3.micro", "t3.small", "m5.large"]
"""
SIM_TENANT = """
[tenants.{name}]
account_id = "{account}"
[tenants.{name}.regions.local-1]
backend = "sim"
zones = ["local-1a", "local-1b", "local-1c"]
"""
MOTO_TENANT = """
[tenants.moto]
account_id = "999999999999"
[tenants.moto.regions.moto-1]
backend = "aws"
zones = ["moto-1a"]
zone_map = {{ "moto-1a" = "us-east-1a" }}
access_key_id = "{key}"
secret_access_key = "{secret}"
"""
USER = """
[[users]]
access_key = "{key}"
secret = "{secret}"
tenant = "{tenant}"
role = "admin"
"""


def config_text(
    workers: int,
    redis_url: str,
    ttl: float,
    moto_url: str | None = None,
    transitional: float | None = None,
    tenants: tuple[str, ...] = tuple(USERS),
) -> str:
    """A gateway's config: the simulator, and the ec2 backend on ``moto_url`` if given; ``tenants`` (of ``USERS``,
    "moto" only with ``moto_url``) and their users. bench_cluster.py's nodes use it too."""
    sims = [n for n in tenants if n != "moto"]
    text = CONFIG.format(
        workers=workers, redis_url=redis_url, ttl=ttl, transitional=ttl if transitional is None else transitional
    )
    text += "".join(SIM_TENANT.format(name=n, account=f"{list(USERS).index(n) + 1:012d}") for n in sims)
    if moto_url is not None:
        text += MOTO_BACKEND.format(moto_url=moto_url)
        text += MOTO_TENANT.format(key=ACCESS_KEY, secret=SECRET_KEY) if "moto" in tenants else ""
    return text + "".join(USER.format(key=k, secret=s, tenant=t) for t, (k, s) in USERS.items() if t in tenants)


# ---------------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------------


def ec2_client(url: str, tenant: str) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    key, secret = USERS[tenant]
    return boto3.session.Session().client(
        "ec2",
        endpoint_url=url,
        region_name=MOTO_REGION if tenant == "moto" else REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=120),
    )


def presigned(url: str, tenant: str, operation: str, expires: int = 3600, **params: Any) -> str:
    """A presigned SigV4 GET URL: wrk (or a timed exchange) replays it as it is."""
    client = ec2_client(url, tenant)
    return str(client.generate_presigned_url(operation, Params=params, ExpiresIn=expires, HttpMethod="GET"))


def basic(tenant: str) -> str:
    key, secret = USERS[tenant]
    return "Authorization: Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


class Exchange:
    """Times one HTTP exchange on a kept-alive loopback connection: send to last byte read, nothing else."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)

    def get(self, url: str, headers: dict[str, str] | None = None) -> tuple[float, int, bytes]:
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        started = time.perf_counter()
        self.conn.request("GET", target, headers=headers or {})
        resp = self.conn.getresponse()
        body = resp.read()
        return time.perf_counter() - started, resp.status, body

    def close(self) -> None:
        self.conn.close()


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def in_turns(
    direct: Callable[[], float], through: Callable[[], float], rounds: int, warm: int = 3
) -> tuple[float, float]:
    """Median seconds of ``direct`` and of ``through`` (each times itself), called in turns: a cloud whose
    calls cost more as it holds more (the simulator checks a launch against every machine) charges both alike."""
    samples: tuple[list[float], list[float]] = ([], [])
    for i in range(rounds + warm):
        first, second = direct(), through()
        if i >= warm:
            samples[0].append(first)
            samples[1].append(second)
    return p50(samples[0]), p50(samples[1])


def clocked(call: Callable[[], Any]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        call()
        return time.perf_counter() - started

    return run


class Exchanges:
    """GETs of URLs made as they are needed (untimed: a presigned URL each), timed on one kept-alive connection."""

    def __init__(self, url_of: Callable[[], str], expect: bytes) -> None:
        self.url_of, self.expect = url_of, expect
        self.ex: Exchange | None = None
        self.bodies: list[bytes] = []

    def __call__(self) -> float:
        url = self.url_of()
        self.ex = self.ex or Exchange(url)
        seconds, status, body = self.ex.get(url)
        if status != 200 or self.expect not in body:
            raise RuntimeError(f"GET {url[:80]}... answered {status}: {body[:300]!r}")
        self.bodies.append(body)
        return seconds

    def close(self) -> None:
        if self.ex is not None:
            self.ex.close()


# ---------------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gateway:
    server: Server
    config: Path


@contextmanager
def gateway(
    work: Path, workers: int, ttl: float, moto_url: str, transitional: float | None = None
) -> Iterator[Gateway]:
    """``cloudgate serve`` on its own redis-server, listings cached ``ttl`` seconds."""
    work.mkdir()
    with redis_server(work) as rds:
        config = work / "gateway.toml"
        config.write_text(config_text(workers, rds.url, ttl, moto_url, transitional))
        serve = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                 "--bind", "127.0.0.1:{port}", "--workers", str(workers)]  # fmt: skip
        with http_server(serve, work / "gateway.log", "cloudgate serve") as gw:
            yield Gateway(Server(gw.url, gw.sessions + rds.sessions, rds.url), config)


def seed(config: Path, tenant: str, count: int) -> None:
    """Launch ``count`` simulator machines for ``tenant`` through the translator a worker uses (no HTTP)."""
    runtime = build_runtime(load(config))
    try:
        t = runtime.translator
        who = Principal(user=tenant, tenant=tenant, role="admin")
        image, flavor = t.list(who, "image")[0], t.list(who, "flavor")[0]
        zones = t.account(who).zones  # each zone's default subnet holds about 4,000 machines
        for number, start in enumerate(range(0, count, 500)):
            batch, zone = min(500, count - start), zones[number % len(zones)]
            t.create_machines(who, MachineSpec(image_id=image.id, flavor_id=flavor.id, count=batch, zone=zone))
    finally:
        runtime.close()


def worker_rss_mb(server: Server) -> float:
    """The largest resident set of the gateway's gunicorn workers (the master's children), in MB."""
    master = server.sessions[0]
    largest = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("PPid", "0").strip()) == master:
            largest = max(largest, int(fields["VmRSS"].split()[0]))
    return largest / 1024


def moto_describe(moto: MotoServer) -> tuple[str, dict[str, str]]:
    """DescribeInstances on moto's server as a GET with SigV4 headers wrk can replay: moto takes the account
    from the Authorization header (a presigned URL's query reaches another, empty, account)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{moto.url}/?Action=DescribeInstances&Version=2016-11-15"
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "ec2", "us-east-1").add_auth(request)
    return url, {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "x-amz-date")}


# ---------------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    goal: str
    figure: float
    baseline: float | None
    unit: str
    #: "ratio <= x", "ratio >= x", "figure <= x" or "difference <= x"
    target: str

    @property
    def measured(self) -> float:
        kind = self.target.split()[0]
        if kind == "ratio":
            return self.figure / self.baseline if self.baseline else float("inf")
        if kind == "difference":
            return self.figure - (self.baseline or 0.0)
        return self.figure

    @property
    def passed(self) -> bool:
        _, op, bound = self.target.split()
        return self.measured <= float(bound) if op == "<=" else self.measured >= float(bound)


def print_table(rows: list[Row]) -> None:
    head = f"{'goal':<58} {'figure':>12} {'baseline':>12} {'unit':<6} {'measured':>10} {'target':<18} result"
    print(head)
    print("-" * len(head))
    for r in rows:
        base = "" if r.baseline is None else f"{r.baseline:12,.2f}"
        print(f"{r.goal:<58} {r.figure:12,.2f} {base:>12} {r.unit:<6} {r.measured:10.2f} {r.target:<18} "
              f"{'pass' if r.passed else 'FAIL'}")  # fmt: skip
    print(f"\n{sum(r.passed for r in rows)} of {len(rows)} goals met")


# ---------------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------------


def rate(url: str, args: argparse.Namespace, headers: tuple[str, ...] = ()) -> float:
    """wrk's requests per second on ``url`` (after a warm-up); any non-2xx answer is an error."""
    wrk_load(url, args.warmup, args.wrk_threads, args.clients, headers)
    load = wrk_load(url, args.seconds, args.wrk_threads, args.clients, headers)
    if load.errors:
        raise RuntimeError(f"{url[:80]}...: {load.errors} errors ({load.first_error})")
    return load.ops / load.seconds


def check(url: str, marker: bytes, count: int, headers: dict[str, str] | None = None) -> bytes:
    """GET once: it must answer 200 with ``count`` times ``marker``; returns the body."""
    request = urllib.request.Request(url, headers=headers or {})
    with DIRECT.open(request, timeout=300) as resp:
        body = resp.read()
        if resp.status != 200 or body.count(marker) != count:
            raise RuntimeError(f"{url[:80]}... answered {resp.status} with {body.count(marker)} x {marker!r}")
    return body


def cached_reads(gw: Gateway, moto: MotoServer, bare_url: str, args: argparse.Namespace) -> list[Row]:
    url = gw.server.url
    describe = presigned(url, "bench", "describe_instances")
    check(describe, b"<instanceId>", LISTED)
    moto_url = presigned(url, "moto", "describe_instances")
    check(moto_url, b"<instanceId>", LISTED)
    direct_moto, moto_headers = moto_describe(moto)
    check(direct_moto, b"<instanceId>", LISTED, moto_headers)
    # this machine's neighbours come and go: the two are measured in turns, and each figure is its median
    gw_rates, bare_rates = [], []
    for _ in range(args.rounds):
        gw_rates.append(rate(describe, args))
        bare_rates.append(rate(f"{bare_url}/?Action=DescribeInstances", args))
    gw_rate, bare_rate = statistics.median(gw_rates), statistics.median(bare_rates)
    gw_moto_rate = rate(moto_url, args)
    moto_rate = rate(direct_moto, args, tuple(f"{k}: {v}" for k, v in moto_headers.items()))
    rows = [
        Row("1. cached DescribeInstances (50), req/s, over bare falcon", gw_rate, bare_rate, "req/s", "ratio >= 0.5"),
        Row("1. cached DescribeInstances (50) on moto, req/s, over moto", gw_moto_rate, moto_rate, "req/s",
            "ratio >= 100"),
    ]  # fmt: skip
    # 3. the other frontends' reads of the same 50, as time per request over EC2's; in turns like goal 1's (one
    # figure taken while a neighbour is busy would otherwise decide a row), each the median of its turns
    ec2_time = 1000 / gw_rate
    reads = {
        "CIMI JSON": ("/cimi/machines", "application/json"),
        "CIMI XML": ("/cimi/machines", "application/xml"),
        "OCCI text/plain": ("/occi/compute/", "text/plain"),
        "OCCI text/occi": ("/occi/compute/", "text/occi"),
        "OCCI JSON": ("/occi/compute/", "application/occi+json"),
    }
    turns: dict[str, list[float]] = {label: [] for label in reads}
    for _ in range(args.rounds):
        for label, (path, accept) in reads.items():
            headers = (basic("bench"), f"Accept: {accept}")
            request = urllib.request.Request(url + path, headers=dict(h.split(": ", 1) for h in headers))
            DIRECT.open(request, timeout=60)
            turns[label].append(1000 / rate(url + path, args, headers))
    for label, times in turns.items():
        rows.append(
            Row(f"3. {label} read (50), ms/req, over EC2's", statistics.median(times), ec2_time, "ms", "ratio <= 1.5")
        )
    return rows


def big_pages(gw: Gateway, args: argparse.Namespace) -> list[Row]:
    url = gw.server.url
    small = presigned(url, "small", "describe_instances", MaxResults=PAGE)
    big = presigned(url, "big", "describe_instances", MaxResults=PAGE)
    check(small, b"<instanceId>", PAGE)
    check(big, b"<instanceId>", PAGE)  # also fills the big account's cache if nothing has yet
    # in turns, like goal 4's calls: a neighbour busy while one of the two is measured would decide the ratio
    small_reads, big_reads = Exchanges(lambda: small, b"<instanceId>"), Exchanges(lambda: big, b"<instanceId>")
    try:
        small_p50, big_p50 = in_turns(small_reads, big_reads, args.samples)
    finally:
        small_reads.close()
        big_reads.close()
    return [
        Row(f"2. first page of {PAGE}, {args.big:,} machines over {SMALL}, p50", big_p50 * 1e3, small_p50 * 1e3, "ms",
            "ratio <= 1.5"),
        Row(f"2. worker RSS with {args.big:,} machines", worker_rss_mb(gw.server), None, "MB", "figure <= 150"),
    ]  # fmt: skip


def expired_reads(gw: Gateway, ttl: float, args: argparse.Namespace) -> list[Row]:
    """A listing of 100 right after the cache TTL lapsed, against one within it (short-TTL gateway)."""
    url = presigned(gw.server.url, "small", "describe_instances")
    check(url, b"<instanceId>", SMALL)
    ex = Exchange(url)
    try:
        cached, lapsed = [], []
        for _ in range(args.lapses):
            time.sleep(ttl * 1.2)
            lapsed.append(ex.get(url)[0])
            cached.append(ex.get(url)[0])
    finally:
        ex.close()
    return [Row("2. listing (100) after the cache TTL over a cached one, p50", p50(lapsed) * 1e3, p50(cached) * 1e3,
                "ms", "ratio <= 2")]  # fmt: skip


def uncached_reads(gw: Gateway, moto: MotoServer, args: argparse.Namespace) -> list[Row]:
    """Reads through a gateway that caches nothing (``cache_ttl = 0``) against the backend call itself: a whole
    listing, and one instance by id (what Terraform's refresh and ``aws ec2 wait`` ask for)."""
    url = gw.server.url
    runtime = build_runtime(load(gw.config))
    try:
        t = runtime.translator
        backend = t.routing.backend(t.account(Principal(user="direct", tenant="direct", role="admin")))
        listing = presigned(url, "direct", "describe_instances")
        one_id = re.findall(rb"<instanceId>([^<]+)<", check(listing, b"<instanceId>", 10))[0].decode()
        one = presigned(url, "direct", "describe_instances", InstanceIds=[one_id])
        native = backend.list_machines()[0].native_id
        reads, by_id = Exchanges(lambda: listing, b"<instanceId>"), Exchanges(lambda: one, b"<instanceId>")
        try:
            direct, through = in_turns(clocked(backend.list_machines), reads, args.samples)
            direct_one, through_one = in_turns(clocked(lambda: backend.get_machines([native])), by_id, args.samples)
        finally:
            reads.close()
            by_id.close()
        upstream, via = moto.client(), ec2_client(url, "moto")
        check(presigned(url, "moto", "describe_instances"), b"<instanceId>", LISTED)
        direct_moto, through_moto = in_turns(
            clocked(upstream.describe_instances), clocked(via.describe_instances), args.heavy_samples
        )
        moto_one = upstream.describe_instances()["Reservations"][0]["Instances"][0]["InstanceId"]
        gw_one = via.describe_instances()["Reservations"][0]["Instances"][0]["InstanceId"]
        direct_moto_one, through_moto_one = in_turns(
            clocked(lambda: upstream.describe_instances(InstanceIds=[moto_one])),
            clocked(lambda: via.describe_instances(InstanceIds=[gw_one])),
            args.samples,
        )
    finally:
        runtime.close()
    return [
        Row("4. uncached DescribeInstances (10) on the simulator, p50", through * 1e3, direct * 1e3, "ms",
            "difference <= 1.5"),
        Row("4. uncached DescribeInstances (id) on the simulator, p50", through_one * 1e3, direct_one * 1e3,
            "ms", "difference <= 1.5"),
        Row(f"4. uncached DescribeInstances ({LISTED}) on moto (boto3), p50", through_moto * 1e3, direct_moto * 1e3,
            "ms", "difference <= 1.5"),
        Row("4. uncached DescribeInstances (id) on moto (boto3), p50", through_moto_one * 1e3,
            direct_moto_one * 1e3, "ms", "difference <= 1.5"),
    ]  # fmt: skip


def mutations(gw: Gateway, moto: MotoServer, args: argparse.Namespace) -> list[Row]:
    """RunInstances and TerminateInstances through a gateway with the shipped cache settings, against the
    backend calls themselves (what a mutation reads besides, a flavor or an image, comes from the listings)."""
    url = gw.server.url
    runtime = build_runtime(load(gw.config))
    try:
        t = runtime.translator
        backend = t.routing.backend(t.account(Principal(user="direct", tenant="direct", role="admin")))
        image, flavor = backend.list_images()[0].native_id, backend.list_flavors()[0].native_id
        made: list[str] = []
        spec = MachineSpec(image_id=image, flavor_id=flavor)
        gw_image = ec2_client(url, "direct").describe_images()["Images"][0]["ImageId"]
        ids: list[str] = []

        def run_url() -> str:
            return presigned(url, "direct", "run_instances", ImageId=gw_image, MinCount=1, MaxCount=1)

        def end_url() -> str:
            return presigned(url, "direct", "terminate_instances", InstanceIds=[ids.pop()])

        launches, ends = Exchanges(run_url, b"<instanceId>"), Exchanges(end_url, b"<instancesSet>")
        try:
            direct_run, through_run = in_turns(
                clocked(lambda: made.append(backend.create_machines(spec)[0].native_id)), launches, args.samples
            )
            # the gateway ends what it launched, the backend what it did
            ids += [m.decode() for body in launches.bodies for m in re.findall(rb"<instanceId>([^<]+)<", body)]
            direct_end, through_end = in_turns(
                clocked(lambda: backend.act_on_machine(made.pop(), MachineAction.TERMINATE)), ends, args.samples
            )
        finally:
            launches.close()
            ends.close()
        rows = [
            Row("4. RunInstances (1) on the simulator, p50", through_run * 1e3, direct_run * 1e3, "ms",
                "difference <= 3"),
            Row("4. TerminateInstances (1) on the simulator, p50", through_end * 1e3, direct_end * 1e3, "ms",
                "difference <= 3"),
        ]  # fmt: skip

        upstream, via = moto.client(), ec2_client(url, "moto")
        moto_image = upstream.describe_images(Owners=["self"])["Images"][0]["ImageId"]
        gw_moto_image = via.describe_images(Owners=["self"])["Images"][0]["ImageId"]
        mine: list[str] = []

        def launch(client: Any, image_id: str, zone: str, into: list[str]) -> Callable[[], float]:
            # The same call both ways: the gateway names the type and zone it launches in (a default flavor,
            # a zone of its region), so the direct call names them too (moto takes longer over each).
            placed = {"InstanceType": "t3.micro", "Placement": {"AvailabilityZone": zone}}

            def run() -> None:
                answer = client.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, **placed)
                into.append(answer["Instances"][0]["InstanceId"])

            return clocked(run)

        def end(client: Any, of: list[str]) -> Callable[[], float]:
            return clocked(lambda: client.terminate_instances(InstanceIds=[of.pop()]))

        moto_run, run = in_turns(
            launch(upstream, moto_image, "us-east-1a", made), launch(via, gw_moto_image, "moto-1a", mine), args.samples
        )
        moto_end, end_time = in_turns(end(upstream, made), end(via, mine), args.samples)
        rows += [
            Row("4. RunInstances (1) on moto (boto3), p50", run * 1e3, moto_run * 1e3, "ms", "difference <= 3"),
            Row("4. TerminateInstances (1) on moto (boto3), p50", end_time * 1e3, moto_end * 1e3, "ms",
                "difference <= 3"),
        ]  # fmt: skip
    finally:
        runtime.close()
    return rows


# ---------------------------------------------------------------------------------------------------


def serve_bare_app(stack: ExitStack, work: Path, gw: Gateway, workers: int) -> str:
    """The bare falcon app (bench_ec2_gateway's) serving the gateway's own DescribeInstances bytes."""
    body = check(presigned(gw.server.url, "bench", "describe_instances"), b"<instanceId>", LISTED)
    responses = work / "responses.json"
    responses.write_text(json.dumps({"DescribeInstances": body.decode("utf-8")}), encoding="utf-8")
    cmd = [sys.executable, str(REPO / "bench" / "bench_ec2_gateway.py"), "--serve-bare", "127.0.0.1:{port}",
           "--config", str(gw.config), "--responses", str(responses), "--workers", str(workers)]  # fmt: skip
    return stack.enter_context(http_server(cmd, work / "bare.log", "bare gunicorn")).url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk seconds per throughput figure")
    parser.add_argument("--warmup", type=float, default=1.0, help="wrk seconds before each")
    parser.add_argument("--clients", type=int, default=8, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of every server")
    parser.add_argument("--big", type=int, default=10_000, help="machines of the big account")
    parser.add_argument("--rounds", type=int, default=3, help="turns of goals 1 and 3's throughput figures")
    parser.add_argument("--samples", type=int, default=50, help="timed calls per latency figure")
    parser.add_argument(
        "--heavy-samples", type=int, default=150,
        help="timed calls of moto's listing of 50 each way (it takes some 100 ms and varies by tens: a millisecond "
        "needs more turns than a call of a few ms)",
    )  # fmt: skip
    parser.add_argument("--lapses", type=int, default=15, help="reads after the cache TTL lapsed")
    parser.add_argument("--ttl", type=float, default=1.0, help="the short-TTL gateway's cache_ttl")
    parser.add_argument("--goals", default="1234", help="the goals to measure (digits), e.g. --goals 4")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cg-bench-goals-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        (work / "moto").mkdir()
        moto = MotoServer(work / "moto")
        stack.callback(moto.stop)
        upstream = moto.client()
        image = moto.register_image(upstream, "bench-image")
        upstream.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=LISTED, MaxCount=LISTED)

        started = time.monotonic()
        if {"1", "2", "3"} & set(args.goals):
            with gateway(work / "cached", args.workers, 3600.0, moto.url) as gw:
                seed(gw.config, "bench", LISTED)
                seed(gw.config, "small", SMALL)
                seed(gw.config, "big", args.big)
                took = time.monotonic() - started
                print(f"seeded {LISTED + SMALL + args.big:,} machines in {took:.0f} s", flush=True)
                bare_url = serve_bare_app(stack, work, gw, args.workers)
                rows += cached_reads(gw, moto, bare_url, args)
                rows += big_pages(gw, args)
        if "2" in args.goals:
            with gateway(work / "lapsing", args.workers, args.ttl, moto.url) as gw:
                seed(gw.config, "small", SMALL)
                rows += expired_reads(gw, args.ttl, args)
        if "4" in args.goals:
            with gateway(work / "uncached", args.workers, 0.0, moto.url) as gw:
                seed(gw.config, "direct", 10)
                rows += uncached_reads(gw, moto, args)
            with gateway(work / "default", args.workers, DEFAULT_TTLS[0], moto.url, DEFAULT_TTLS[1]) as gw:
                rows += mutations(gw, moto, args)
    print_table(sorted(rows, key=lambda r: r.goal[:2]))  # by goal; within one, as measured


if __name__ == "__main__":
    main()
