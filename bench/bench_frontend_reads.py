"""CIMI and OCCI collection reads of 50 machines against EC2's DescribeInstances of the same 50, in one run.

    python bench/bench_frontend_reads.py [--seconds 10] [--rounds 3] [--clients 8]

One real ``cloudgate serve`` (simulator, listings cached for the whole run, see bench_ec2_gateway.CONFIG) on
its own redis-server holds the 50 running instances of bench_ec2_gateway's lister. ``wrk`` drives, in
rotating order each round: EC2 ``DescribeInstances`` (a presigned SigV4 GET), ``GET /cimi/machines`` in
JSON and in XML (CIMI 2.0), and ``GET /occi/compute/`` in text/plain, text/occi and application/occi+json
(HTTP Basic). Printed per round and as medians: req/s, server CPU ms per request, body size, and each
rendering's ratio to EC2 (req/s and CPU). Every process is stopped.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_ec2_gateway import (
    DIRECT,
    LISTED,
    LISTER,
    REPO,
    START_TIMEOUT,
    Result,
    check_describe,
    gateway,
    measured,
    presigned_describe,
    wrk_load,
)

AUTH = "Authorization: Basic " + base64.b64encode(f"{LISTER[0]}:{LISTER[1]}".encode()).decode()
#: label -> (path, Accept)
RENDERINGS = {
    "cimi-json": ("/cimi/machines", "application/json"),
    "cimi-xml": ("/cimi/machines", "application/xml"),
    "occi-text": ("/occi/compute/", "text/plain"),
    "occi-hdr": ("/occi/compute/", "text/occi"),
    "occi-json": ("/occi/compute/", "application/occi+json"),
}
#: what marks one machine in each answer (text/occi carries its locations in headers, not counted)
MARKS = {
    "cimi-json": b'"resourceURI":"http://schemas.dmtf.org/cimi/2/Machine"',
    "cimi-xml": b"<Machine ",
    "occi-text": b"X-OCCI-Location:",
    "occi-json": b'{"kind":"http://schemas.ogf.org/occi/infrastructure#compute","id"',
}


def check_collection(label: str, url: str, accept: str) -> int:
    """GET the collection once: it must hold the 50 machines. Returns the answer's size (headers included)."""
    request = urllib.request.Request(url, headers={"Accept": accept, AUTH.split(": ")[0]: AUTH.split(": ", 1)[1]})
    with DIRECT.open(request, timeout=30) as resp:
        body, headers = resp.read(), str(resp.headers)
    count = body.count(MARKS[label]) if label in MARKS else headers.count("/occi/compute/")
    if resp.status != 200 or count != LISTED:
        raise RuntimeError(f"{url} ({accept}) answered {resp.status} with {count} machines: {body[:300]!r}")
    return len(body) + len(headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="cg-bench-cimi-") as tmp,
        gateway(REPO, Path(tmp) / "gw", args.workers) as gw,
    ):
        server = gw.server
        ec2_url = presigned_describe(server.url, int(args.rounds * 4 * (args.seconds + args.warmup) + START_TIMEOUT))
        sizes = {"ec2": check_describe(ec2_url)}
        for label, (path, accept) in RENDERINGS.items():
            sizes[label] = check_collection(label, server.url + path, accept)

        def run(label: str, seconds: float) -> Result:
            if label == "ec2":
                return measured(server, True, lambda: wrk_load(ec2_url, seconds, args.wrk_threads, args.clients))
            path, accept = RENDERINGS[label]
            headers = (AUTH, f"Accept: {accept}")
            url = server.url + path
            return measured(server, True, lambda: wrk_load(url, seconds, args.wrk_threads, args.clients, headers))

        labels = ["ec2", *RENDERINGS]
        rows: list[dict[str, Result]] = []
        print(f"{LISTED} machines; bodies: " + ", ".join(f"{k} {v:,} B" for k, v in sizes.items()))
        print(f"{'round':>5} " + " ".join(f"{x + ' req/s':>15} {x + ' ms/op':>15}" for x in labels))
        for number in range(args.rounds):
            order = labels[number % len(labels) :] + labels[: number % len(labels)]
            results: dict[str, Result] = {}
            for label in order:
                run(label, args.warmup)
                results[label] = run(label, args.seconds)
                if results[label].errors:
                    raise RuntimeError(f"{label}: {results[label].errors} errors ({results[label].first_error})")
            rows.append(results)
            print(f"{number + 1:>5} " + _row(results, labels))
        medians = {
            label: Result(
                ops=int(statistics.median(r[label].ops for r in rows)),
                errors=0,
                seconds=statistics.median(r[label].seconds for r in rows),
                driver_cpu=0.0,
                server_cpu=statistics.median(r[label].server_cpu for r in rows),
                p50_ms=statistics.median(r[label].p50_ms or 0.0 for r in rows),
                misses=None,
                redis_calls=None,
                first_error="",
            )
            for label in labels
        }
        print(f"{'med':>5} " + _row(medians, labels))


def _row(results: dict[str, Result], labels: list[str]) -> str:
    cells = " ".join(f"{results[x].rate:>15,.0f} {results[x].cpu_ms:>15.2f}" for x in labels)
    base = results["ec2"]
    ratios = ", ".join(
        f"{x} {results[x].rate / base.rate:.2f}x req/s {results[x].cpu_ms / base.cpu_ms:.2f}x cpu"
        for x in labels
        if x != "ec2" and base.rate
    )
    return f"{cells}\n      ratios to ec2: {ratios}"


if __name__ == "__main__":
    main()
