"""The ``cloudgate`` command: serve, check, users.

Operator mistakes (bad config, unreachable Redis, unknown backend) end in one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXIT_USAGE = 2

log = logging.getLogger("cloudgate")


class CliError(Exception):
    """A one-line operator error."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cloudgate", description="Cloud API gateway: EC2, CIMI and OCCI.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", help="config file (default: the embedded conf/gateway.toml)")
        sp.add_argument("--data-dir", help="embedded Redis data directory (default: ~/.local/state/cloudgate)")

    serve = sub.add_parser("serve", help="run the gateway under gunicorn")
    common(serve)
    serve.add_argument("--bind", help="HOST:PORT to listen on (default from config: 127.0.0.1:8080)")
    serve.add_argument("--workers", type=int, help="worker processes (default from config: 2)")

    check = sub.add_parser("check", help="validate the config and reach Redis and every backend")
    common(check)

    users = sub.add_parser("users", help="manage users at run time")
    common(users)
    usub = users.add_subparsers(dest="users_command", required=True)
    add = usub.add_parser("add", help="add a user; prints its access key and secret once")
    add.add_argument("--tenant", required=True)
    add.add_argument("--role", default="member", help="admin, member or reader")
    add.add_argument("--name", default="")
    add.add_argument("--access-key")
    add.add_argument("--secret", help="default: generated")
    usub.add_parser("list", help="list users (never their secrets)")
    rm = usub.add_parser("remove", help="remove a user")
    rm.add_argument("access_key")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    metrics_dir = None
    owner = os.getpid()
    if args.command == "serve":
        # Must precede the first import of prometheus_client (the value class is chosen at import).
        metrics_dir = tempfile.mkdtemp(prefix="cloudgate-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        return _dispatch(args)
    except CliError as exc:
        print(f"cloudgate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    finally:
        if metrics_dir and os.getpid() == owner:  # not in gunicorn's forked workers
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _dispatch(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, load

    try:
        config = load(args.config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    from gateway import logs

    logs.configure(config)
    if config.uses_demo_credentials():
        log.warning("the demo credentials (access key 'demo') are configured: do not expose this gateway")
    return {"serve": _serve, "check": _check, "users": _users}[args.command](args, config)


def _data_dir(args: argparse.Namespace, config: Any) -> Path:
    from gateway.embedded_redis import default_data_dir

    return Path(args.data_dir or config.gateway.data_dir or default_data_dir())


def _ping(url: str) -> None:
    import redis

    from gateway.app import connect_redis
    from gateway.redis_sentinel import close

    try:
        # wait=0: a cluster whose seeds do not answer is reported at once, not waited for as a worker does
        client = connect_redis(url, connect_timeout=5, socket_timeout=5, wait=0)
    except ValueError as exc:
        raise CliError(f"bad Redis URL {_redact(url)}: {exc}") from None
    except redis.RedisError as exc:
        raise CliError(f"cannot reach Redis at {_redact(url)}: {exc}") from None
    try:
        client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise CliError(f"cannot reach Redis at {_redact(url)}: {exc}") from None
    finally:
        close(client)


def _redact(url: str) -> str:
    from gateway.config import redact_url

    return redact_url(url)


@contextlib.contextmanager
def _redis(args: argparse.Namespace, config: Any, supervise: bool = False) -> Iterator[str]:
    """The configured Redis, else the embedded one (started for the command if not running).

    ``supervise``: restart the embedded server if it dies while the command runs (``serve``), when this
    process started it.
    """
    from gateway.embedded_redis import EmbeddedRedis, EmbeddedRedisError

    if config.gateway.redis_url:
        _ping(config.gateway.redis_url)
        yield config.gateway.redis_url
        return
    embedded = EmbeddedRedis(_data_dir(args, config))
    running = embedded.alive()
    owner = os.getpid()
    try:
        url = embedded.url if running else embedded.start()
    except (EmbeddedRedisError, OSError) as exc:
        raise CliError(f"cannot start the embedded Redis: {exc}") from None
    if supervise and not running:
        embedded.supervise()
    try:
        yield url
    finally:
        if not running and os.getpid() == owner:
            embedded.stop()


def _serve(args: argparse.Namespace, config: Any) -> int:
    from gateway import server

    bind = args.bind or config.gateway.bind
    workers = args.workers or config.gateway.workers
    if workers < 1:
        raise CliError("--workers must be at least 1")
    with _redis(args, config, supervise=True) as url:
        log.info("cloudgate serving on http://%s with %d workers (Redis: %s)", bind, workers, _redact(url))
        # gunicorn leaves by SystemExit, in the master and in every forked worker alike; it passes
        # through untouched, and _redis() cleans up only in the process that started the server.
        server.run(config, url, bind, workers)
    return 0


def _check(args: argparse.Namespace, config: Any) -> int:
    from gateway.app import build_runtime, seed_identity
    from translator.errors import CloudgateError

    with _redis(args, config) as url:
        runtime = build_runtime(config, url)
        try:
            seed_identity(runtime)
            failures = 0
            for account in config.accounts.values():
                try:
                    backend = runtime.translator.backend(account)
                    runtime.translator.caller.call(account, "check", backend.check)
                    print(f"ok    {account.key} ({account.driver})")
                except CloudgateError as exc:
                    failures += 1
                    # The operator sees why (the last transient error); API clients only get the generic message.
                    cause = exc.__cause__
                    why = f" ({cause.message})" if isinstance(cause, CloudgateError) else ""
                    print(f"FAIL  {account.key} ({account.driver}): {exc.message}{why}")
            print(f"ok    redis {_redact(url)}")
        finally:
            runtime.close()
    if failures:
        raise CliError(f"{failures} backend account(s) unreachable")
    return 0


def _users(args: argparse.Namespace, config: Any) -> int:
    from gateway.app import build_runtime, seed_identity
    from translator.errors import CloudgateError
    from translator.identity import User, new_access_key, new_secret

    with _redis(args, config) as url:
        runtime = build_runtime(config, url)
        try:
            runtime.identity.load_tenants(config.tenants.values())
            if args.users_command == "add":
                user = User(
                    access_key=args.access_key or new_access_key(),
                    secret=args.secret or new_secret(),
                    tenant=args.tenant,
                    role=args.role,
                    name=args.name,
                )
                runtime.identity.add_user(user)
                print(f"access_key={user.access_key}")
                print(f"secret={user.secret}")
            elif args.users_command == "list":
                seed_identity(runtime)
                for u in runtime.identity.users():
                    print(f"{u.access_key}\t{u.tenant}\t{u.role}\t{u.name}")
            else:
                runtime.identity.remove_user(args.access_key)
                print(f"removed {args.access_key}")
        except CloudgateError as exc:
            raise CliError(exc.message) from None
        finally:
            runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
