"""The real Cinder block-storage services in one process, run by the cinder virtualenv's python.

A deployment runs ``cinder-api``, ``cinder-scheduler`` and ``cinder-volume`` as three processes joined by
a message bus. Here the three share one eventlet process and oslo.messaging's in-process ``fake://``
transport, so no broker is needed, and the volume service drives the fake LVM driver Cinder's wheel
ships for its own functional tests (volumes and snapshots live only in the database). Everything else
(sqlite database, keystonemiddleware, policies, the API's paste pipeline) comes from the config file,
as for a deployed Cinder.

The process stops on SIGTERM, SIGINT or end of standard input (so a dead parent never leaves it
behind).

Usage: python cinder_server.py CINDER.CONF READY.JSON — ``READY.JSON`` is written (``port``, ``pid``)
once the API answers on the port the config's ``osapi_volume_listen_port`` (0: any) bound.
"""

# Cinder's own starters patch eventlet before anything else is imported; so do we.
from cinder import monkey_patch  # isort: skip

monkey_patch.patch()

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from cinder import i18n  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_log import log as oslo_log  # noqa: E402

i18n.enable_lazy()

from cinder import coordination, objects, rpc, service, version  # noqa: E402
from cinder.common import config, constants  # noqa: E402
from green_serving import announce, run_until_stopped  # noqa: E402

CONF = cfg.CONF
BACKEND = "fake"  # the one entry of ``enabled_backends``; volumes land on host ``<host>@fake#fake``


def serve(conf_file: str, ready: Path) -> None:
    """Start volume, scheduler and API services, report the port, and run until told to stop."""
    objects.register_all()
    CONF(["--config-file", conf_file], project="cinder", version=version.version_string())
    config.set_middleware_defaults()
    oslo_log.setup(CONF, "cinder")
    logging.captureWarnings(True)
    warnings.simplefilter("ignore")
    coordination.COORDINATOR.start()
    rpc.init(CONF)

    # Volume first: the scheduler, on start, asks every volume service for its capabilities and waits
    # (up to scheduler_driver_init_wait_time) for the answers before it places anything.
    volume = service.Service.create(
        host=f"{CONF.host}@{BACKEND}",
        service_name=BACKEND,
        binary=constants.VOLUME_BINARY,
        coordination=True,
    )
    volume.start()
    scheduler = service.Service.create(binary=constants.SCHEDULER_BINARY)
    scheduler.start()
    api = service.WSGIService("osapi_volume")
    api.start()

    announce(ready, api.port)
    run_until_stopped()

    api.stop()
    for running in (scheduler, volume):
        try:
            running.stop()
        except Exception:  # already going away: nothing left to save
            logging.getLogger(__name__).exception("stopping %s", running.binary)
    rpc.cleanup()


def main() -> int:
    serve(sys.argv[1], Path(sys.argv[2]))
    # Leftover green timers (heartbeats, periodic tasks) must not hold the exit up.
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
