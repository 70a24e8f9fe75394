"""Cached DescribeInstances through nginx in front of 1, 2 and 3 gateway nodes on one Redis, as ratios to one node.

    python bench/bench_cluster.py [--duration 5] [--rounds 1] [--workers 2] [--clients 8]

Starts everything itself on loopback and stops it at the end: one redis-server shared by three ``cloudgate serve``
nodes (simulator backend, 50 running instances, listings cached for an hour, ``--workers`` each), and a real nginx
configured from conf/examples/nginx.conf as tests/cluster/ configures it (``cluster_nodes.Nginx``: one worker
process, the nodes as its upstream) in front of the first 1, 2, then 3 nodes. ``wrk`` (``apt-get install wrk``)
replays a presigned SigV4 GET URL made for nginx's address (nginx passes the Host header on, so every node
verifies it), as bench/run.py's goal 1 does; any non-2xx answer fails the run. One more row measures the first
node directly (no nginx), for what the balancer itself costs.

Everything shares the machine's cores: the nodes, nginx, Redis and wrk. On a 2-core machine one node's two
workers already keep both cores busy, so more nodes cannot add throughput there (they add processes competing
for the same cores); the ratios show what the balancer and the extra nodes cost, not how a cluster of machines
scales. ``--rounds`` > 1 measures every row once per round, in turns, and prints each row's median.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO), str(REPO / "tests"), str(REPO / "tests" / "cluster")]

from bench_ec2_gateway import http_server, redis_server  # noqa: E402
from cluster_nodes import Nginx  # noqa: E402
from run import LISTED, check, config_text, presigned, rate, seed  # noqa: E402

NODES = 3
TENANT = "bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", dest="seconds", type=float, default=5.0, help="wrk seconds per row")
    parser.add_argument("--warmup", type=float, default=1.0, help="wrk seconds before each row")
    parser.add_argument("--rounds", type=int, default=1, help="turns of every row; each row prints its median")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of each node")
    parser.add_argument("--clients", type=int, default=8, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=2)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")

    with tempfile.TemporaryDirectory(prefix="cg-bench-cluster-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        rds = stack.enter_context(redis_server(work))
        config = work / "gateway.toml"
        config.write_text(config_text(args.workers, rds.url, 3600.0, tenants=(TENANT,)))
        seed(config, TENANT, LISTED)
        serve = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                 "--bind", "127.0.0.1:{port}", "--workers", str(args.workers)]  # fmt: skip
        nodes = [stack.enter_context(http_server(serve, work / f"node{i}.log", f"node {i}")) for i in range(NODES)]
        ports = [int(node.url.rsplit(":", 1)[1]) for node in nodes]

        def through(count: int) -> Callable[[], float]:
            def measure() -> float:
                nginx = Nginx(work / f"nginx{count}", ports[:count])
                try:
                    url = presigned(nginx.url, TENANT, "describe_instances")
                    check(url, b"<instanceId>", LISTED)
                    return rate(url, args)
                finally:
                    nginx.stop()

            return measure

        direct_url = presigned(nodes[0].url, TENANT, "describe_instances")
        check(direct_url, b"<instanceId>", LISTED)
        rows: dict[str, tuple[int, Callable[[], float]]] = {
            f"nginx, {n} node{'s' if n > 1 else ''}": (n, through(n)) for n in range(1, NODES + 1)
        }
        rows["direct to one node (no nginx)"] = (1, lambda: rate(direct_url, args))
        figures: dict[str, list[float]] = {label: [] for label in rows}
        for _ in range(args.rounds):
            for label, (_, measure) in rows.items():
                figures[label].append(measure())
                print(f"  {label}: {figures[label][-1]:,.0f} req/s", file=sys.stderr, flush=True)

    medians = {label: statistics.median(values) for label, values in figures.items()}
    one = medians["nginx, 1 node"]
    print(f"cached DescribeInstances ({LISTED}), {args.workers} workers a node, wrk -t{args.wrk_threads} "
          f"-c{args.clients}, {args.seconds:g} s a row, median of {args.rounds}")  # fmt: skip
    head = f"{'row':<30} {'nodes':>5} {'req/s':>10} {'ratio to 1 node':>16}"
    print(head)
    print("-" * len(head))
    for label, (count, _) in rows.items():
        print(f"{label:<30} {count:>5} {medians[label]:>10,.0f} {medians[label] / one:>16.2f}")


if __name__ == "__main__":
    main()
