"""The canonical machine lifecycle through the OpenNebula and CloudStack backends, against their simulators always
and against a real cloud when the operator names one (tests marked ``live``):

    CLOUDGATE_LIVE_OPENNEBULA=/path/one.toml  CLOUDGATE_LIVE_CLOUDSTACK=/path/cs.toml  pytest -m live

Each file holds one account's options, as in a region table of ``conf/examples/<cloud>.toml`` (``endpoint`` and
``session``; ``url``, ``api_key`` and ``secret_key``...), plus what the test itself needs: ``zones`` (CloudStack
zone names, required there; OpenNebula's default ``["default"]``), ``image`` and ``flavor`` (name or id; default
the first image and the smallest flavor) and ``wait_timeout`` (seconds a transition may take; default 900). The
test makes one machine named ``cloudgate-live-<random>`` and terminates it whatever happens. The simulator runs
are the same function, so the code path a live run takes is exercised in every CI run.
"""

from __future__ import annotations

import contextlib
import os
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from peers.cloudstack import CloudStackSimulator
from peers.opennebula import OpenNebulaSimulator

from backends.cloudstack import CloudStackBackend
from backends.opennebula import OpenNebulaBackend
from translator.backend import AccountConfig, Backend, BackendServices
from translator.errors import CloudgateError
from translator.model import ImageState, Machine, MachineAction, MachineSpec, MachineState

BACKENDS: dict[str, type[Backend]] = {"opennebula": OpenNebulaBackend, "cloudstack": CloudStackBackend}
ENV = {"opennebula": "CLOUDGATE_LIVE_OPENNEBULA", "cloudstack": "CLOUDGATE_LIVE_CLOUDSTACK"}
#: keys of a live file that are the test's, not the backend's options
TEST_KEYS = ("zones", "image", "flavor", "wait_timeout")
#: zones when the file names none (oned has no zones: the name is the gateway's); CloudStack's must be named
ZONES = {"opennebula": ["default"]}


@dataclass(frozen=True)
class Target:
    """One cloud to run the lifecycle on: the account's options and how patiently to wait for it."""

    driver: str
    options: dict[str, Any]
    zones: tuple[str, ...]
    image: str = ""
    flavor: str = ""
    wait_timeout: float = 20.0
    pause: float = 0.05


# -- the simulators ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def opennebula_sim() -> Iterator[Target]:
    sim = OpenNebulaSimulator(admin_password="one-admin")
    try:
        sim.add_user("alice", "alice-pw")
        sim.add_vnet("private", "10.0.0.10", 16)
        sim.add_image("debian-12", size_mb=2048)
        nic = 'NIC=[NETWORK="private"]\nCONTEXT=[NETWORK="YES"]'
        sim.add_template("gw-small", f'CPU="1"\nVCPU="1"\nMEMORY="512"\n{nic}', GW_FLAVOR="small")
        yield Target("opennebula", {"endpoint": sim.url, "session": "alice:alice-pw", "timeout": 10}, ("default",))
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def cloudstack_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    sim = CloudStackSimulator(tmp_path_factory.mktemp("cloudstack"))
    try:
        key, secret = sim.keys("alice")
        options = {"url": sim.endpoint, "api_key": key, "secret_key": secret, "poll_interval": 0.05}
        yield Target("cloudstack", options, ("zone1",))
    finally:
        sim.stop()


# -- a real cloud --------------------------------------------------------------------------------------------------


def live_target(driver: str) -> Target:
    """The account the operator's file describes; skipped (naming the variable) when none is set."""
    variable = ENV[driver]
    path = os.environ.get(variable)
    if not path:
        pytest.skip(f"set {variable} to a TOML file of {driver} account options to run this against a real cloud")
    options = tomllib.loads(Path(path).read_text())
    own = {key: options.pop(key) for key in TEST_KEYS if key in options}
    problems = BACKENDS[driver].validate_options(options)
    if "zones" not in own and driver not in ZONES:
        problems.append("zones: required (the names of the cloud's zones to use)")
    assert not problems, f"{variable}={path}: " + "; ".join(problems)
    return Target(
        driver,
        options,
        tuple(own["zones"] if "zones" in own else ZONES[driver]),
        image=str(own.get("image", "")),
        flavor=str(own.get("flavor", "")),
        wait_timeout=float(own.get("wait_timeout", 900)),
        pause=5.0,
    )


@pytest.fixture(
    params=[
        pytest.param(("opennebula", "simulator"), id="opennebula-simulator"),
        pytest.param(("cloudstack", "simulator"), id="cloudstack-simulator"),
        pytest.param(("opennebula", "live"), id="opennebula-live", marks=pytest.mark.live),
        pytest.param(("cloudstack", "live"), id="cloudstack-live", marks=pytest.mark.live),
    ]
)
def target(request: pytest.FixtureRequest) -> Target:
    driver, where = request.param
    return request.getfixturevalue(f"{driver}_sim") if where == "simulator" else live_target(driver)


@pytest.fixture
def backend(target: Target, redis_client: redis.Redis) -> Iterator[Backend]:
    cls = BACKENDS[target.driver]
    account = AccountConfig(
        key=f"live-{uuid.uuid4().hex[:8]}/r-1", tenant="live", region="r-1", backend=target.driver,
        driver=target.driver, zones=target.zones, options=target.options,
    )  # fmt: skip
    made = cls(account, BackendServices(redis_client))
    yield made
    made.close()


# -- the lifecycle -------------------------------------------------------------------------------------------------


def wait_for(target: Target, read: Callable[[], Machine], state: MachineState) -> Machine:
    """Re-read the machine until it is in ``state`` (bounded by the target's wait_timeout)."""
    deadline = time.monotonic() + target.wait_timeout
    while True:
        machine = read()
        if machine.state == state:
            return machine
        assert machine.state != MachineState.ERROR, f"the machine failed: {machine!r}"
        assert time.monotonic() < deadline, f"not {state} within {target.wait_timeout} s: {machine!r}"
        time.sleep(target.pause)


def pick(items: list[Any], wanted: str, what: str) -> Any:
    if not wanted:
        return items[0]
    found = [i for i in items if wanted in (i.native_id, i.name)]
    assert found, f"no {what} named {wanted!r} among {[i.name for i in items]}"
    return found[0]


def test_machine_lifecycle(target: Target, backend: Backend) -> None:
    """check, flavors, images, create, running, stop, start, terminate: what a first real deployment does."""
    backend.check()
    flavors = sorted(backend.list_flavors(), key=lambda f: (f.memory_mb, f.vcpus))
    assert flavors and all(f.vcpus > 0 and f.memory_mb > 0 for f in flavors)
    images = [i for i in backend.list_images() if i.state == ImageState.AVAILABLE]
    assert images
    flavor, image = pick(flavors, target.flavor, "flavor"), pick(images, target.image, "image")
    name = f"cloudgate-live-{uuid.uuid4().hex[:8]}"
    spec = MachineSpec(image_id=image.native_id, flavor_id=flavor.native_id, name=name, zone=backend.account.zones[0])
    made = backend.create_machines(spec)
    try:
        assert len(made) == 1 and made[0].state in (MachineState.PENDING, MachineState.RUNNING)
        native_id = made[0].native_id

        def read() -> Machine:
            (machine,) = backend.get_machines([native_id])
            return machine

        running = wait_for(target, read, MachineState.RUNNING)
        assert (running.name, running.flavor_id, running.image_id) == (name, flavor.native_id, image.native_id)
        assert running.vcpus == flavor.vcpus and running.memory_mb == flavor.memory_mb
        assert native_id in {m.native_id for m in backend.list_machines()}

        backend.act_on_machine(native_id, MachineAction.STOP)
        wait_for(target, read, MachineState.STOPPED)
        backend.act_on_machine(native_id, MachineAction.START)
        wait_for(target, read, MachineState.RUNNING)
        backend.act_on_machine(native_id, MachineAction.TERMINATE)
        wait_for(target, read, MachineState.TERMINATED)
    finally:
        for machine in made:  # a real cloud bills what a failed run leaves behind
            with contextlib.suppress(CloudgateError):
                backend.act_on_machine(machine.native_id, MachineAction.TERMINATE)
