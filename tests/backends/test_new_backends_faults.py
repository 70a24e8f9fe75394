"""Faults of the OpenNebula and CloudStack simulators through a real ``cloudgate serve``.

- A stalled cloud (every call, then a fraction of them) is a 503 with ``Retry-After`` in each protocol's own
  shape (EC2 ``Unavailable``, a CIMI error document, an OCCI error) within a bound set by the backends' small
  ``timeout``, never a hang or a 500; nothing is half-made, and once the stall ends the create retried with the
  same idempotency token (EC2 ``ClientToken``, CIMI ``Idempotency-Key``) makes exactly one resource.
- A cloud that is down (nothing listens at its endpoint) is the same 503 at once, for reads and creates.
- A seeded mix of dropped, lost, failed and stalled calls under an EC2 lifecycle run by boto3 in its standard
  retry mode, each step retried until it succeeds: with the faults off, exactly the expected resources exist.
  Every faulted answer seen is a 503 or a clean 4xx.
- A CIMI machine create retried through faults with one ``Idempotency-Key`` makes one machine.

A stalled call still runs in the cloud once its stall is over (the simulators sleep before running it), so
after each stall the tests wait it out, as a client honouring ``Retry-After`` does, before checking what exists.
A machine's or a volume's create stalled past the timeout, resent with its key and stalled again, still makes
one (their own tests); other creates stalled past the timeout are spared here, and the lifecycle's mix stalls
calls within the timeout.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import botocore.exceptions
import pytest
import requests
from netutil import free_port
from new_backends import CLOUDS, Cloud, Setup, ec2, image_id, live_ids, running_clouds, wait_for
from peers.cloudstack.server import COMMANDS as CS_COMMANDS
from peers.opennebula.resources import METHODS as ONE_METHODS

FRONTENDS = Path(__file__).resolve().parents[1] / "frontends"
for _sub in ("cimi", "occi"):  # the CIMI and OCCI clients live beside their frontends' tests
    if str(FRONTENDS / _sub) not in sys.path:
        sys.path.insert(0, str(FRONTENDS / _sub))

from cimiclient import JSON, XML, Cimi  # noqa: E402
from occiclient import INFRA, OCCI_JSON, TEXT_OCCI, TEXT_PLAIN, Doc, text_lines  # noqa: E402

T = TypeVar("T")

#: each backend's per-call timeout (seconds): a stalled call is given up after it
TIMEOUT = 0.5
#: how long a stalled call sleeps in the simulator before it runs: longer than TIMEOUT
STALL = 1.2
#: a client's bound on one request to the gateway: every retry of a stalled call and then some; not a hang
BOUND = 20.0
#: how long a slow call of the lifecycle's mix sleeps: within TIMEOUT (see the module's docstring)
SLOW = 0.6 * TIMEOUT
#: per cloud, the seeded fault mix of the lifecycle (the simulators' own keywords; about 15 % of calls)
MIXES: dict[str, dict[str, float]] = {
    "opennebula": {"drop": 0.05, "fail": 0.06, "stall": 0.04, "stall_seconds": SLOW},  # drop: run, answer lost
    "cloudstack": {"drop": 0.03, "lose": 0.04, "fail": 0.05, "stall": 0.03, "stall_seconds": SLOW},
}
#: per cloud, the calls that make something: a fraction of stalls spares them (see the module's docstring)
MAKERS: dict[str, frozenset[str]] = {
    "opennebula": frozenset(m for m in ONE_METHODS if m.endswith((".allocate", ".instantiate", ".clone"))),
    "cloudstack": frozenset(c for c in CS_COMMANDS if c.startswith(("deploy", "create", "associate", "register"))),
}
#: the simulators' keyword naming the calls a fault is limited to
ONLY = {"opennebula": "methods", "cloudstack": "commands"}
#: the tags the lifecycle sets on both instances (then it removes ``env`` from the second)
TAGS = {"role": "web", "env": "t"}
#: attempts the test makes of one step (each attempt is up to four HTTP requests by boto3's standard retries)
STEP_ATTEMPTS = 12


#: per cloud, a tenant whose one region is on that cloud's backend at an endpoint where nothing listens
DOWN: dict[str, tuple[str, str]] = {"opennebula": ("one-down", "one-down-1"), "cloudstack": ("cs-down", "cs-down-1")}


def down_config() -> str:
    """A backend of each kind whose cloud is down, and a tenant (with its user) on each."""
    dead = free_port()
    return f"""
[backends.one-down]
driver = "opennebula"
endpoint = "http://127.0.0.1:{dead}/RPC2"
timeout = {TIMEOUT}

[backends.cs-down]
driver = "cloudstack"
url = "http://127.0.0.1:{dead}/client/api"
timeout = {TIMEOUT}

[tenants.one-down]
account_id = "555555555555"
[tenants.one-down.regions.one-down-1]
backend = "one-down"
zones = ["one-a"]
session = "alice:alice-pw"

[tenants.cs-down]
account_id = "666666666666"
[tenants.cs-down.regions.cs-down-1]
backend = "cs-down"
zones = ["zone1"]
api_key = "ak"
secret_key = "sk"
""" + "".join(
        f'\n[[users]]\naccess_key = "{t}"\nsecret = "{t}-secret"\ntenant = "{t}"\nrole = "admin"\n'
        for t, _ in DOWN.values()
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("new-backends-faults")
    with running_clouds(tmp, timeout=TIMEOUT, retry_attempts=2, extra_config=down_config()) as s:
        yield s


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_cloud_that_is_down_is_a_503_in_each_protocol(setup: Setup, cloud: str) -> None:
    tenant, region = DOWN[cloud]
    auth = (tenant, f"{tenant}-secret")
    down = ec2(setup, tenant, region, read_timeout=BOUND, connect_timeout=5)
    for call in (
        lambda: down.describe_instances(),
        lambda: down.describe_images(),
        lambda: down.create_volume(Size=1, AvailabilityZone=setup.clouds[cloud].zone),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            call()
        assert status_of(refused.value) == 503 and refused.value.response["Error"]["Code"] == "Unavailable"
        assert refused.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"].isdigit()
    for path, media in (
        ("cimi/machines", JSON),
        ("cimi/machineImages", XML),
        ("occi/compute/", TEXT_PLAIN),
        ("occi/compute/", TEXT_OCCI),
        ("occi/storage/", OCCI_JSON),
    ):
        answer = requests.get(f"{setup.gw.url}/{path}", auth=auth, headers={"Accept": media}, timeout=BOUND)
        assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit(), (path, answer.text)
        assert answer.headers["Content-Type"].startswith(media) and answer.text.strip(), (path, media)
    error = requests.get(f"{setup.gw.url}/cimi/machines", auth=auth, headers={"Accept": JSON}, timeout=BOUND).json()
    assert error["status"] == 503 and error["code"] == "ServiceUnavailable", error
    error = requests.get(f"{setup.gw.url}/occi/compute/", auth=auth, headers={"Accept": OCCI_JSON}, timeout=BOUND)
    assert error.json()["error"]["code"] == 503, error.text


def wait_out_stalls() -> None:
    """Let the calls still sleeping in the simulator run: what they make counts, as it would in a real cloud."""
    time.sleep(STALL + 0.5)


@dataclass
class Tally:
    """Every HTTP answer (or transport failure) an EC2 client saw, each retry of boto3's included."""

    seen: Counter[str] = field(default_factory=Counter)

    def hook(self, response: Any = None, caught_exception: Exception | None = None, **_: Any) -> None:
        if response is not None:
            code = (response[1] or {}).get("Error", {}).get("Code", "")
            self.seen[f"{response[0].status_code} {code}".strip()] += 1
        elif caught_exception is not None:
            self.seen[type(caught_exception).__name__] += 1

    def faulted(self) -> dict[str, int]:
        return {k: n for k, n in self.seen.items() if not k.startswith("2")}


def client(s: Setup, c: Cloud, tally: Tally | None = None, attempts: int = 1) -> Any:
    """The tenant's EC2 client: boto3's standard retry mode, a read timeout of ``BOUND`` (a hang fails)."""
    made = ec2(
        s,
        c.tenant,
        c.region,
        retries={"mode": "standard", "total_max_attempts": attempts},
        read_timeout=BOUND,
        connect_timeout=5,
    )
    if tally is not None:
        made.meta.events.register("needs-retry.ec2", tally.hook)
    return made


def status_of(e: botocore.exceptions.ClientError) -> int:
    return e.response["ResponseMetadata"]["HTTPStatusCode"]


def retried(what: str, call: Callable[[], T], done: Callable[[], bool] | None = None) -> T | None:
    """``call()`` until it succeeds, at most ``STEP_ATTEMPTS`` times. A 503 is tried again; a 4xx ends the step
    when ``done()`` shows an earlier attempt whose answer was lost did the work (EC2 refuses the repeat of a
    stop, say, as the wrong state), else it fails the test; a 500 always fails it."""
    for _ in range(STEP_ATTEMPTS):
        try:
            return call()
        except botocore.exceptions.ClientError as e:
            status = status_of(e)
            assert status == 503 or 400 <= status < 500, (what, status, e.response["Error"])
            if status != 503:
                if done is not None and done():
                    return None
                raise
    raise AssertionError(f"{what}: still failing after {STEP_ATTEMPTS} attempts")


# -- stalls ----------------------------------------------------------------------------------------------------


def cimi_refs(cimi: Cimi, image: str) -> dict[str, Any]:
    """A MachineCreate body for the cloud's image and its smallest configuration."""
    configs = cimi.members("machineConfigs", "machineConfigurations")
    smallest = min(configs, key=lambda d: (d["cpu"], d["memory"]))
    images = cimi.members("machineImages", "machineImages")
    chosen = next(i for i in images if i.get("name") == image)
    return {"machineTemplate": {"machineConfig": {"href": smallest["id"]}, "machineImage": {"href": chosen["id"]}}}


def cimi_machines(cimi: Cimi) -> set[str]:
    return {m["id"] for m in cimi.members("machines", "machines") if m["state"] not in ("DELETING", "DELETED")}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_stalled_cloud_is_a_503_in_each_protocol_and_a_retried_create_makes_one(setup: Setup, cloud: str) -> None:
    c = setup.clouds[cloud]
    mine = client(setup, c)
    auth = (c.tenant, f"{c.tenant}-secret")
    cimi = Cimi(setup.gw.url, JSON, "2", auth=auth)
    image = image_id(mine, c.image)
    machine_create = {"name": f"{cloud}-stalled", **cimi_refs(cimi, c.image)}
    before, cimi_before = live_ids(mine), cimi_machines(cimi)
    before_volumes = {v["VolumeId"] for v in mine.describe_volumes()["Volumes"]}
    token, key = f"{cloud}-stalled-run", f"{cloud}-stalled-cimi"
    compute = "".join(f"{n}: {v}\n" for n, v in text_lines(Doc(INFRA + "compute"))).encode()

    def requests_under_stall() -> None:
        """Each frontend's create while calls stall: its 503 with Retry-After, in its own format."""
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            mine.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=token)
        assert status_of(refused.value) == 503, refused.value.response
        assert refused.value.response["Error"]["Code"] == "Unavailable"
        assert refused.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"].isdigit()
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            mine.create_volume(Size=1, AvailabilityZone=c.zone, ClientToken=f"{token}-volume")
        assert status_of(refused.value) == 503 and refused.value.response["Error"]["Code"] == "Unavailable"

        answer = requests.post(
            f"{setup.gw.url}/cimi/machines",
            json=machine_create,
            auth=auth,
            headers={"Accept": JSON, "Idempotency-Key": key},
            timeout=BOUND,
        )
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"].isdigit()
        error = answer.json()
        assert error["status"] == 503 and error["code"] == "ServiceUnavailable" and error["message"], error

        answer = requests.post(
            f"{setup.gw.url}/occi/compute/",
            data=compute,
            auth=auth,
            headers={"Accept": TEXT_PLAIN, "Content-Type": TEXT_PLAIN},
            timeout=BOUND,
        )
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"].isdigit()
        assert answer.headers["Content-Type"].startswith(TEXT_PLAIN) and answer.text.strip()

    c.faults(stall=1.0, stall_seconds=STALL)
    try:
        started = time.monotonic()
        requests_under_stall()
        print(f"{cloud}: four creates under a full stall answered in {time.monotonic() - started:.1f} s")
    finally:
        c.faults()
    wait_out_stalls()
    assert live_ids(mine) == before  # nothing half-made: no machine, no volume
    assert {v["VolumeId"] for v in mine.describe_volumes()["Volumes"]} <= before_volumes
    assert cimi_machines(cimi) == cimi_before

    # A fraction of the calls that make nothing stalled: the creates, retried with the same tokens until answered.
    answers: list[int] = []
    spared = {ONLY[cloud]: sorted(set(ONE_METHODS if cloud == "opennebula" else CS_COMMANDS) - MAKERS[cloud])}
    c.faults(stall=0.3, stall_seconds=STALL, seed=11, **spared)
    try:
        made = None
        for _ in range(STEP_ATTEMPTS):
            try:
                made = mine.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=token)
            except botocore.exceptions.ClientError as e:
                answers.append(status_of(e))
                continue
            break
        created = None
        for _ in range(STEP_ATTEMPTS):
            answer = cimi.call("POST", "machines", machine_create, "MachineCreate", headers={"Idempotency-Key": key})
            if answer.status == 202:
                created = answer.headers["Location"]
                break
            answers.append(answer.status)
    finally:
        c.faults()
    assert set(answers) <= {503}, answers
    assert made is not None and created is not None, answers
    instance = made["Instances"][0]["InstanceId"]
    wait_out_stalls()
    try:
        again = mine.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=token)
        assert again["Instances"][0]["InstanceId"] == instance
        repeat = cimi.call("POST", "machines", machine_create, "MachineCreate", headers={"Idempotency-Key": key})
        assert repeat.status == 202 and repeat.headers["Location"] == created
        # exactly two machines: the EC2 client's and the CIMI client's, whatever the stalls made on the way
        assert len(live_ids(mine) - before) == 2 and instance in live_ids(mine), (live_ids(mine) - before, answers)
        new = cimi_machines(cimi) - cimi_before
        assert len(new) == 2 and created in new, new
    finally:
        cleanup(mine, before)
    print(f"{cloud}: stalled creates answered {Counter(answers)} before they were made")


#: per cloud, the one call that makes a machine
LAUNCH = {"opennebula": "one.template.instantiate", "cloudstack": "deployVirtualMachine"}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_launch_stalled_past_the_timeout_and_retried_makes_one_machine(setup: Setup, cloud: str) -> None:
    """The machine's create call itself stalls past the backend's timeout, and so does the translator's resend of
    it with the same key: both reach the cloud after the gateway gave up on them, when nothing under the key
    was there yet to find. The client's retry with its token gets one machine, and only one exists."""
    c = setup.clouds[cloud]
    mine = client(setup, c)
    image = image_id(mine, c.image)
    before = live_ids(mine)
    token = f"{cloud}-stalled-launch"
    c.faults(stall=1.0, stall_seconds=STALL, **{ONLY[cloud]: [LAUNCH[cloud]]})
    try:
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            mine.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=token)
        assert status_of(refused.value) == 503, refused.value.response
    finally:
        c.faults()
    wait_out_stalls()
    try:
        made = mine.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=token)["Instances"][0]
        again = mine.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=token)["Instances"][0]
        assert again["InstanceId"] == made["InstanceId"]
        wait_for(lambda: live_ids(mine) - before, lambda ids: bool(ids))
        time.sleep(STALL)  # anything else the stalled calls made has had time to show
        assert live_ids(mine) - before == {made["InstanceId"]}
    finally:
        cleanup(mine, before)


#: per cloud, the one call that makes a volume
VOLUME_CREATE = {"opennebula": "one.image.allocate", "cloudstack": "createVolume"}


def volume_set(mine: Any) -> set[str]:
    return {v["VolumeId"] for v in mine.describe_volumes()["Volumes"]}


def cimi_volumes(cimi: Cimi) -> set[str]:
    return {v["id"] for v in cimi.members("volumes", "volumes") if v["state"] not in ("DELETING", "DELETED")}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_volume_create_stalled_past_the_timeout_and_retried_makes_one_volume(setup: Setup, cloud: str) -> None:
    """As a launch: the volume's create call (EC2 ``CreateVolume`` with a ``ClientToken``, and a named CIMI volume
    with an ``Idempotency-Key``) stalls past the timeout, and so does the translator's resend; both reach the cloud
    when nothing under the key was there to find. Each client's retry gets one volume, the same one each time,
    its name as given, and only those two exist."""
    c = setup.clouds[cloud]
    mine = client(setup, c)
    cimi = Cimi(setup.gw.url, JSON, "2", auth=(c.tenant, f"{c.tenant}-secret"))
    before, cimi_before = volume_set(mine), cimi_volumes(cimi)
    token, key, name = f"{cloud}-stalled-volume", {"Idempotency-Key": f"{cloud}-stalled-cimi-volume"}, f"{cloud}-data"
    body = {"name": name, "volumeTemplate": {"volumeConfig": {"capacity": 1024 * 1024}}}
    c.faults(stall=1.0, stall_seconds=STALL, **{ONLY[cloud]: [VOLUME_CREATE[cloud]]})
    try:
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            mine.create_volume(Size=1, AvailabilityZone=c.zone, ClientToken=token)
        assert status_of(refused.value) == 503, refused.value.response
        answer = cimi.call("POST", "volumes", body, "VolumeCreate", headers=key)
        assert answer.status == 503, (answer.status, answer.raw)
    finally:
        c.faults()
    wait_out_stalls()
    try:
        made = mine.create_volume(Size=1, AvailabilityZone=c.zone, ClientToken=token)["VolumeId"]
        again = mine.create_volume(Size=1, AvailabilityZone=c.zone, ClientToken=token)["VolumeId"]
        created = cimi.call("POST", "volumes", body, "VolumeCreate", headers=key)
        repeat = cimi.call("POST", "volumes", body, "VolumeCreate", headers=key)
        assert again == made
        assert created.status == 202 and repeat.status == 202, (created.raw, repeat.raw)
        href = created.headers["Location"]
        assert repeat.headers["Location"] == href
        time.sleep(STALL)  # anything else the stalled calls made has had time to show
        new = volume_set(mine) - before
        assert len(new) == 2 and made in new, new
        cimi_new = cimi_volumes(cimi) - cimi_before
        assert len(cimi_new) == 2 and href in cimi_new, cimi_new
        assert cimi.ok("GET", href).doc["name"] == name
    finally:
        for volume in volume_set(mine) - before:
            mine.delete_volume(VolumeId=volume)
        wait_for(lambda: volume_set(mine), lambda ids: ids <= before)


def cleanup(mine: Any, before: set[str]) -> None:
    """Terminate what a test made (faults off) and wait until it is gone."""
    extra = live_ids(mine) - before
    if extra:
        mine.terminate_instances(InstanceIds=sorted(extra))
    wait_for(lambda: live_ids(mine), lambda ids: not ids - before)


# -- a lifecycle under a mix of faults ---------------------------------------------------------------------------


def volume_ids(client: Any) -> dict[str, list[str]]:
    """Each volume of the tenant -> the instances it is attached to (a machine's boot disk is one, on some clouds)."""
    return {
        v["VolumeId"]: [a["InstanceId"] for a in v.get("Attachments", [])] for v in client.describe_volumes()["Volumes"]
    }


def address_ids(client: Any) -> dict[str, str]:
    """Each address of the tenant -> the instance it is associated with, or ``""``."""
    return {a["AllocationId"]: a.get("InstanceId", "") for a in client.describe_addresses()["Addresses"]}


def tags_of(client: Any, instance: str) -> dict[str, str]:
    found = client.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in found.get("Tags", [])}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_ec2_lifecycle_under_faults_makes_nothing_twice(setup: Setup, cloud: str) -> None:
    """RunInstances x2, Stop/Start, a volume attached, detached and deleted, tags set and removed, an address
    allocated, associated, disassociated and released, then Terminate: every step through a seeded ~15 % mix of
    faults, retried until it succeeds. RunInstances and CreateVolume carry a ClientToken; AllocateAddress has
    none in EC2, so an allocation whose answer was lost may leave a second address: the gateway promises
    nothing there, and the test only counts such strays (and releases them)."""
    c = setup.clouds[cloud]
    tally = Tally()
    mine, calm = client(setup, c, tally, attempts=4), client(setup, c)

    def state(instance: str) -> str:
        found = retried("describe", lambda: mine.describe_instances(InstanceIds=[instance]))
        assert found is not None
        return found["Reservations"][0]["Instances"][0]["State"]["Name"]

    def volume_state(volume: str) -> str:
        found = retried("describe volume", lambda: mine.describe_volumes(VolumeIds=[volume]))
        assert found is not None
        return found["Volumes"][0]["State"]

    def reaches(what: Callable[[], str], wanted: str) -> None:
        wait_for(what, lambda s: s == wanted)

    image = image_id(calm, c.image)
    before, volumes_before, addresses_before = live_ids(calm), volume_ids(calm), address_ids(calm)
    c.faults(**MIXES[cloud], seed=5)
    try:
        a, b = (
            retried(
                "run", lambda n=n: mine.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=f"{cloud}-{n}")
            )["Instances"][0]["InstanceId"]
            for n in ("first", "second")
        )
        for instance in (a, b):
            reaches(lambda i=instance: state(i), "running")
        retried("stop", lambda: mine.stop_instances(InstanceIds=[a]), done=lambda: state(a) in ("stopping", "stopped"))
        reaches(lambda: state(a), "stopped")
        retried("start", lambda: mine.start_instances(InstanceIds=[a]), done=lambda: state(a) in ("pending", "running"))
        reaches(lambda: state(a), "running")

        volume = retried(
            "create volume",
            lambda: mine.create_volume(Size=1, AvailabilityZone=c.zone, ClientToken=f"{cloud}-volume"),
        )["VolumeId"]
        reaches(lambda: volume_state(volume), "available")
        retried(
            "attach",
            lambda: mine.attach_volume(VolumeId=volume, InstanceId=a, Device="/dev/vdb"),
            done=lambda: volume_state(volume) in ("attaching", "in-use"),
        )
        reaches(lambda: volume_state(volume), "in-use")
        retried(
            "detach",
            lambda: mine.detach_volume(VolumeId=volume),
            done=lambda: volume_state(volume) in ("detaching", "available"),
        )
        reaches(lambda: volume_state(volume), "available")
        retried(
            "delete volume",
            lambda: mine.delete_volume(VolumeId=volume),
            done=lambda: volume not in retried("volumes", lambda: volume_ids(mine)),
        )

        retried(
            "tag",
            lambda: mine.create_tags(
                Resources=[a, b], Tags=[{"Key": "role", "Value": "web"}, {"Key": "env", "Value": "t"}]
            ),
        )
        retried("untag", lambda: mine.delete_tags(Resources=[b], Tags=[{"Key": "env"}]))

        allocation = retried("allocate", lambda: mine.allocate_address(Domain="vpc"))["AllocationId"]
        association = retried(
            "associate",
            lambda: mine.associate_address(AllocationId=allocation, InstanceId=a)["AssociationId"],
            done=lambda: retried("addresses", lambda: address_ids(mine)).get(allocation) == a,
        )
        if association is None:  # associated by an attempt whose answer was lost: EC2 names the association
            found = calm.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
            association = found["AssociationId"]
        retried(
            "disassociate",
            lambda: mine.disassociate_address(AssociationId=association),
            done=lambda: not retried("addresses", lambda: address_ids(mine)).get(allocation),
        )
        retried(
            "release",
            lambda: mine.release_address(AllocationId=allocation),
            done=lambda: allocation not in retried("addresses", lambda: address_ids(mine)),
        )
    finally:
        c.faults()

    # With the faults off (the slow calls of the mix were all answered: nothing still runs): exactly the two
    # instances, no volume but their boot disks, the tags as set.
    made = live_ids(calm) - before
    try:
        assert made == {a, b}, (made, tally.faulted())
        volumes = volume_ids(calm)
        new_volumes = {v: on for v, on in volumes.items() if v not in volumes_before}
        assert all(on and set(on) <= {a, b} for on in new_volumes.values()), new_volumes
        assert volume not in volumes
        assert tags_of(calm, a) == TAGS and tags_of(calm, b) == {"role": "web"}
        strays = set(address_ids(calm)) - set(addresses_before)
        assert allocation not in strays
        for stray in strays:  # an allocation whose answer was lost (no ClientToken in EC2): unassociated
            assert address_ids(calm)[stray] == ""
            calm.release_address(AllocationId=stray)

        c.faults(**MIXES[cloud], seed=6)
        try:
            retried("terminate", lambda: mine.terminate_instances(InstanceIds=[a, b]))
        finally:
            c.faults()
        wait_for(lambda: live_ids(calm), lambda ids: not ids - before)
        wait_for(lambda: set(volume_ids(calm)), lambda ids: ids <= set(volumes_before))
    finally:
        cleanup(calm, before)
    faulted = tally.faulted()
    print(f"{cloud}: {sum(tally.seen.values())} answers, faulted {faulted}; stray addresses {len(strays)}")
    # every faulted answer a 503 or a 4xx, never a 500, a hang (a read timeout) or a reset connection
    assert all(k.startswith("503 ") or k[:1] == "4" for k in faulted), faulted


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_cimi_create_retried_through_faults_with_its_idempotency_key_makes_one_machine(
    setup: Setup, cloud: str
) -> None:
    c = setup.clouds[cloud]
    cimi = Cimi(setup.gw.url, JSON, "2", auth=(c.tenant, f"{c.tenant}-secret"))
    body = {"name": f"{cloud}-keyed", **cimi_refs(cimi, c.image)}
    key = {"Idempotency-Key": f"{cloud}-cimi-keyed"}
    before = cimi_machines(cimi)
    refused: list[int] = []
    created = None
    # twice the lifecycle's mix: most attempts of a create (several calls each) meet a fault
    c.faults(**{k: v * 2 if k != "stall_seconds" else v for k, v in MIXES[cloud].items()}, seed=8)
    try:
        for _ in range(STEP_ATTEMPTS):
            answer = cimi.call("POST", "machines", body, "MachineCreate", headers=key)
            if answer.status == 202:
                created = answer.headers["Location"]
                break
            assert answer.status == 503 and answer.headers["Retry-After"].isdigit(), (answer.status, answer.raw)
            refused.append(answer.status)
    finally:
        c.faults()
    assert created is not None, refused
    try:
        repeat = cimi.call("POST", "machines", body, "MachineCreate", headers=key)
        assert repeat.status == 202 and repeat.headers["Location"] == created
        assert cimi_machines(cimi) - before == {created}
    finally:
        for href in cimi_machines(cimi) - before:
            cimi.call("DELETE", href)
        wait_for(lambda: cimi_machines(cimi), lambda hrefs: not hrefs - before)
    print(f"{cloud}: the keyed CIMI create was refused {len(refused)} time(s) before it was accepted")
