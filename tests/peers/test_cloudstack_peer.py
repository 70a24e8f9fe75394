"""The CloudStack simulator is faithful: two independent clients (``cs`` and libcloud's driver) drive it.

Signatures and ``expires`` are checked, JSON and XML both parse, asynchronous jobs progress through
``jobstatus`` 0 then 1 (or 2), paging and ``count`` behave as CloudStack's ListResponse, accounts are isolated,
and the fault knob drops, loses, fails and stalls calls.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cs
import pytest
import requests
from libcloud.compute.providers import get_driver
from libcloud.compute.types import InvalidCredsError, NodeState, Provider
from peers.cloudstack import CloudStackSimulator

CONFIG: dict[str, Any] = {
    "accounts": [
        {"name": "alice", "apikey": "alice-key", "secretkey": "alice-secret", "projects": ["alice-project"]},
        {"name": "bob", "apikey": "bob-key", "secretkey": "bob-secret"},
        {"name": "carol", "apikey": "carol-key", "secretkey": "carol-secret", "limits": {"user_vm": 1}},
    ],
    "zones": [{"name": "zone1"}],
    "templates": [
        {"name": "Ubuntu 22.04", "ostypename": "Ubuntu 22.04 LTS", "size_gb": 8},
        {"name": "Broken", "ostypename": "Other Linux (64-bit)", "fails": True},
    ],
    "timings": {"expunge_delay": 0.5},
}
DEADLINE = 10.0


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudStackSimulator]:
    server = CloudStackSimulator(tmp_path_factory.mktemp("cloudstack"), CONFIG)
    try:
        yield server
    finally:
        server.stop()


def client(sim: CloudStackSimulator, account: str = "alice", **options: Any) -> cs.CloudStack:
    key, secret = sim.keys(account)
    return cs.CloudStack(endpoint=sim.endpoint, key=key, secret=secret, poll_interval=0.05, job_timeout=20, **options)


def driver(sim: CloudStackSimulator, account: str = "alice", secret: str | None = None) -> Any:
    key, real_secret = sim.keys(account)
    cls = get_driver(Provider.CLOUDSTACK)
    conn = cls(key, secret or real_secret, host="127.0.0.1", port=sim.port, path="/client/api", secure=False)
    conn.connection.poll_interval = 0.05
    return conn


def basics(api: cs.CloudStack) -> dict[str, str]:
    return {
        "zoneid": api.listZones()["zone"][0]["id"],
        "templateid": api.listTemplates(templatefilter="executable", name="Ubuntu 22.04")["template"][0]["id"],
        "serviceofferingid": api.listServiceOfferings()["serviceoffering"][0]["id"],
    }


def signed_get(sim: CloudStackSimulator, params: dict[str, str], secret: str) -> requests.Response:
    """A request signed by hand, the way CloudStack's reference describes (not through either client)."""
    text = "&".join(f"{k}={quote(params[k], safe='*')}" for k in sorted(params)).lower()
    signature = base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()).decode()
    return requests.get(sim.endpoint, params={**params, "signature": signature}, timeout=10)


def wait_for(probe: Any, what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def vm_state(api: cs.CloudStack, vm_id: str) -> str | None:
    found = api.listVirtualMachines(id=vm_id).get("virtualmachine", [])
    return found[0]["state"] if found else None


def test_cs_vm_lifecycle_with_async_jobs(sim: CloudStackSimulator) -> None:
    api = client(sim)
    deployed = api.deployVirtualMachine(name="web-1", **basics(api))
    assert set(deployed) >= {"id", "jobid"}
    pending = api.queryAsyncJobResult(jobid=deployed["jobid"])
    assert pending["jobstatus"] == 0 and "jobresult" not in pending
    assert vm_state(api, deployed["id"]) == "Starting"
    done = api._jobresult(deployed["jobid"])
    vm = done["virtualmachine"]
    assert vm["state"] == "Running" and vm["name"] == "web-1" and vm["account"] == "alice"
    assert vm["nic"][0]["ipaddress"].startswith("10.") and vm["securitygroup"][0]["name"] == "default"
    finished = api.queryAsyncJobResult(jobid=deployed["jobid"])
    assert (finished["jobstatus"], finished["jobresultcode"], finished["jobresulttype"]) == (1, 0, "object")
    assert finished["jobinstanceid"] == vm["id"]

    medium = next(o for o in api.listServiceOfferings()["serviceoffering"] if o["name"] == "Medium Instance")
    with pytest.raises(cs.CloudStackApiException) as running:
        api.changeServiceForVirtualMachine(id=vm["id"], serviceofferingid=medium["id"])
    assert running.value.error["errorcode"] == 431
    stopped = api.stopVirtualMachine(id=vm["id"], forced=True, fetch_result=True)
    assert stopped["virtualmachine"]["state"] == "Stopped"
    resized = api.changeServiceForVirtualMachine(id=vm["id"], serviceofferingid=medium["id"])["virtualmachine"]
    assert (resized["serviceofferingid"], resized["cpunumber"], resized["memory"]) == (medium["id"], 2, 4096)
    renamed = api.updateVirtualMachine(id=vm["id"], displayname="web-one", userdata="I2Nsb3VkLWNvbmZpZw==")
    assert (renamed["virtualmachine"]["displayname"], renamed["virtualmachine"]["userdata"]) == (
        "web-one",
        "I2Nsb3VkLWNvbmZpZw==",
    )
    with pytest.raises(cs.CloudStackApiException) as refused:
        api.rebootVirtualMachine(id=vm["id"])
    assert refused.value.error["errorcode"] == 431 and refused.value.error["cserrorcode"] == 4350
    assert api.startVirtualMachine(id=vm["id"], fetch_result=True)["virtualmachine"]["state"] == "Running"
    assert api.rebootVirtualMachine(id=vm["id"], fetch_result=True)["virtualmachine"]["state"] == "Running"
    forced = api.rebootVirtualMachine(id=vm["id"], forced=True)  # 4.17+: stopped, then started, in one job
    assert vm_state(api, vm["id"]) == "Stopping"
    wait_for(lambda: vm_state(api, vm["id"]) == "Starting", "the forced reboot to start the VM again")
    assert api._jobresult(forced["jobid"])["virtualmachine"]["state"] == "Running"
    job = api.destroyVirtualMachine(id=vm["id"], expunge=True)
    assert vm_state(api, vm["id"]) == "Stopping"
    assert api._jobresult(job["jobid"])["virtualmachine"]["state"] in ("Expunging", "Destroyed")
    wait_for(lambda: vm_state(api, vm["id"]) is None, "the VM to be expunged")
    assert not api.listVolumes(virtualmachineid=vm["id"])


def test_cs_failed_deploy_and_resource_limit(sim: CloudStackSimulator) -> None:
    api = client(sim, "carol")
    base = basics(api)
    broken = api.listTemplates(templatefilter="executable", name="Broken")["template"][0]["id"]
    job = api.deployVirtualMachine(**{**base, "templateid": broken})
    with pytest.raises(cs.CloudStackApiException) as failed:
        api._jobresult(job["jobid"])
    assert failed.value.error["errorcode"] == 533
    result = api.queryAsyncJobResult(jobid=job["jobid"])
    assert (result["jobstatus"], result["jobresultcode"]) == (2, 533)
    assert vm_state(api, job["id"]) == "Error"
    with pytest.raises(cs.CloudStackApiException) as limited:
        api.deployVirtualMachine(**base)
    assert (limited.value.error["errorcode"], limited.value.error["cserrorcode"]) == (534, 4370)
    assert limited.value.response.status_code == 534
    api.destroyVirtualMachine(id=job["id"], expunge=True, fetch_result=True)


def test_cs_volumes_snapshots_addresses_and_tags(sim: CloudStackSimulator) -> None:
    api = client(sim)
    base = basics(api)
    vm = api.deployVirtualMachine(fetch_result=True, **base)["virtualmachine"]
    offerings = {o["name"]: o for o in api.listDiskOfferings()["diskoffering"]}
    with pytest.raises(cs.CloudStackApiException) as no_size:
        api.createVolume(name="data", diskofferingid=offerings["Custom"]["id"], zoneid=base["zoneid"])
    assert no_size.value.error["errorcode"] == 431
    vol = api.createVolume(
        name="data", diskofferingid=offerings["Custom"]["id"], size=2, zoneid=base["zoneid"], fetch_result=True
    )["volume"]
    assert (vol["state"], vol["size"], vol["type"]) == ("Allocated", 2 << 30, "DATADISK")
    attached = api.attachVolume(id=vol["id"], virtualmachineid=vm["id"], fetch_result=True)["volume"]
    assert attached["virtualmachineid"] == vm["id"] and attached["deviceid"] == 1 and attached["state"] == "Ready"
    with pytest.raises(cs.CloudStackApiException):
        api.deleteVolume(id=vol["id"])
    resized = api.resizeVolume(id=vol["id"], size=4, fetch_result=True)["volume"]
    assert resized["size"] == 4 << 30
    small = api.createVolume(name="small", diskofferingid=offerings["Small"]["id"], zoneid=base["zoneid"])
    with pytest.raises(cs.CloudStackApiException) as sizeless:
        api.resizeVolume(id=small["id"], diskofferingid=offerings["Custom"]["id"])
    assert sizeless.value.error["errorcode"] == 431
    moved = api.resizeVolume(id=small["id"], diskofferingid=offerings["Custom"]["id"], size=6, fetch_result=True)
    assert (moved["volume"]["size"], moved["volume"]["diskofferingname"]) == (6 << 30, "Custom")
    api.deleteVolume(id=small["id"])
    snap = api.createSnapshot(volumeid=vol["id"], fetch_result=True)["snapshot"]
    assert snap["state"] == "BackedUp" and snap["volumeid"] == vol["id"]
    assert [s["id"] for s in api.listSnapshots(volumeid=vol["id"])["snapshot"]] == [snap["id"]]
    assert api.deleteSnapshot(id=snap["id"], fetch_result=True) == {"success": True}
    api.detachVolume(id=vol["id"], fetch_result=True)
    assert api.deleteVolume(id=vol["id"]) == {"success": "true"}

    ip = api.associateIpAddress(zoneid=base["zoneid"], fetch_result=True)["ipaddress"]
    assert ip["state"] == "Allocated" and not ip["isstaticnat"]
    assert api.enableStaticNat(ipaddressid=ip["id"], virtualmachineid=vm["id"]) == {"success": "true"}
    [listed] = api.listPublicIpAddresses(id=ip["id"])["publicipaddress"]
    assert listed["isstaticnat"] and listed["virtualmachineid"] == vm["id"]
    api.disableStaticNat(ipaddressid=ip["id"], fetch_result=True)
    assert api.disassociateIpAddress(id=ip["id"], fetch_result=True) == {"success": True}
    assert not api.listPublicIpAddresses(id=ip["id"])

    tags = [{"key": "role", "value": "web"}, {"key": "tier", "value": "1"}]
    api.createTags(resourceids=vm["id"], resourcetype="UserVm", tags=tags, fetch_result=True)
    assert {(t["key"], t["value"]) for t in api.listTags(resourceid=vm["id"])["tag"]} == {
        ("role", "web"),
        ("tier", "1"),
    }
    [tagged] = api.listVirtualMachines(tags=[{"key": "role", "value": "web"}])["virtualmachine"]
    assert tagged["id"] == vm["id"] and {"key": "tier", "value": "1"} in [
        {"key": t["key"], "value": t["value"]} for t in tagged["tags"]
    ]
    api.deleteTags(resourceids=vm["id"], resourcetype="UserVm", tags=[{"key": "role"}], fetch_result=True)
    assert [t["key"] for t in api.listTags(resourceid=vm["id"])["tag"]] == ["tier"]
    api.destroyVirtualMachine(id=vm["id"], expunge=True, fetch_result=True)


def test_signatures_expiry_and_error_codes(sim: CloudStackSimulator) -> None:
    key, secret = sim.keys("alice")
    good = signed_get(sim, {"command": "listZones", "apiKey": key, "response": "json"}, secret)
    assert good.status_code == 200 and good.json()["listzonesresponse"]["count"] == 1
    bad = signed_get(sim, {"command": "listZones", "apiKey": key, "response": "json"}, "not-the-secret")
    assert bad.status_code == 401
    assert bad.json()["listzonesresponse"]["errorcode"] == 401
    unknown_key = signed_get(sim, {"command": "listZones", "apiKey": "nobody", "response": "json"}, secret)
    assert unknown_key.status_code == 401
    with pytest.raises(cs.CloudStackApiException) as wrong_secret:
        cs.CloudStack(endpoint=sim.endpoint, key=key, secret="wrong").listZones()
    assert wrong_secret.value.response.status_code == 401

    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S%z")
    with pytest.raises(cs.CloudStackApiException) as expired:
        client(sim).listZones(expires=past, signatureVersion="3")
    assert expired.value.error["errorcode"] == 401
    future = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S%z")
    assert client(sim).listZones(expires=future, signatureVersion="3")["count"] == 1

    api = client(sim)
    with pytest.raises(cs.CloudStackApiException) as missing:
        api.listTemplates()
    assert missing.value.error["errortext"].endswith("missing parameter templatefilter")
    assert missing.value.response.status_code == 431
    with pytest.raises(cs.CloudStackApiException) as unknown:
        api.listBananas()
    assert unknown.value.error["errorcode"] == 432
    with pytest.raises(cs.CloudStackApiException) as no_such:
        api.stopVirtualMachine(id="00000000-0000-4000-8000-000000000000")
    assert (no_such.value.error["errorcode"], no_such.value.error["cserrorcode"]) == (431, 4350)


def test_xml_is_the_default_and_json_on_request(sim: CloudStackSimulator) -> None:
    key, secret = sim.keys("alice")
    answer = signed_get(sim, {"command": "listServiceOfferings", "apiKey": key}, secret)
    assert answer.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(answer.content)
    assert root.tag == "listserviceofferingsresponse" and root.findtext("count") == "2"
    offerings = root.findall("serviceoffering")
    assert {o.findtext("name") for o in offerings} == {"Small Instance", "Medium Instance"}
    assert {o.findtext("cpunumber") for o in offerings} == {"1", "2"}
    error = ET.fromstring(signed_get(sim, {"command": "listTemplates", "apiKey": key}, secret).content)
    assert error.tag == "listtemplatesresponse" and error.findtext("errorcode") == "431"
    text = client(sim).listZones(json=False)
    assert ET.fromstring(text).find("zone/name").text == "zone1"
    as_json = client(sim).listZones()
    assert as_json["zone"][0]["name"] == "zone1"


def test_paging_and_count(sim: CloudStackSimulator) -> None:
    api = client(sim, "bob", method="post")  # parameters in a form body: signed the same way
    for number in range(5):
        api.createSecurityGroup(name=f"paged-{number}", description="paging")
    first = api.listSecurityGroups(page=1, pagesize=2)
    assert first["count"] == 6 and len(first["securitygroup"]) == 2
    last = api.listSecurityGroups(page=3, pagesize=2)
    assert len(last["securitygroup"]) == 2
    beyond = api.listSecurityGroups(page=4, pagesize=2)
    assert beyond == {"count": 6}
    names = [g["name"] for g in api.listSecurityGroups(fetch_list=True, pagesize=2)]
    assert sorted(names) == sorted(["default"] + [f"paged-{n}" for n in range(5)])
    with pytest.raises(cs.CloudStackApiException) as no_page:
        api.listSecurityGroups(pagesize=2)
    assert no_page.value.error["errorcode"] == 431
    assert api.listSSHKeyPairs() == {}
    rule = {"securitygroupname": "paged-0", "protocol": "udp", "startport": 53, "cidrlist": "10.0.0.0/8"}
    group = api.authorizeSecurityGroupEgress(fetch_result=True, **rule)["securitygroup"]
    [egress] = group["egressrule"]
    assert (egress["protocol"], egress["startport"], egress["endport"], egress["cidr"]) == ("udp", 53, 53, "10.0.0.0/8")
    assert api.revokeSecurityGroupEgress(id=egress["ruleid"], fetch_result=True) == {"success": True}
    assert not api.listSecurityGroups(securitygroupname="paged-0")["securitygroup"][0]["egressrule"]
    for number in range(5):
        api.deleteSecurityGroup(name=f"paged-{number}")


def test_accounts_and_projects_are_isolated(sim: CloudStackSimulator) -> None:
    alice, bob = client(sim), client(sim, "bob")
    project = alice.listProjects()["project"][0]
    assert project["name"] == "alice-project" and not bob.listProjects()
    vm = alice.deployVirtualMachine(fetch_result=True, **basics(alice))["virtualmachine"]
    in_project = alice.deployVirtualMachine(projectid=project["id"], fetch_result=True, **basics(alice))[
        "virtualmachine"
    ]
    assert in_project["projectid"] == project["id"]
    assert vm["id"] not in [v["id"] for v in bob.listVirtualMachines(listall=True).get("virtualmachine", [])]
    own = [v["id"] for v in alice.listVirtualMachines()["virtualmachine"]]
    assert vm["id"] in own and in_project["id"] not in own
    assert [v["id"] for v in alice.listVirtualMachines(projectid=project["id"])["virtualmachine"]] == [in_project["id"]]
    with pytest.raises(cs.CloudStackApiException) as denied:
        bob.stopVirtualMachine(id=vm["id"])
    assert (denied.value.error["errorcode"], denied.value.error["cserrorcode"]) == (531, 4365)
    with pytest.raises(cs.CloudStackApiException):
        bob.listVirtualMachines(projectid=project["id"])
    with pytest.raises(cs.CloudStackApiException):
        bob.queryAsyncJobResult(jobid=alice.rebootVirtualMachine(id=vm["id"])["jobid"])
    for each in (vm, in_project):
        alice.destroyVirtualMachine(id=each["id"], expunge=True, fetch_result=True)


def test_libcloud_driver(sim: CloudStackSimulator) -> None:
    conn = driver(sim)
    sizes, images, locations = conn.list_sizes(), conn.list_images(), conn.list_locations()
    assert {s.name for s in sizes} == {"Small Instance", "Medium Instance"}
    assert {s.ram for s in sizes} == {1024, 4096}
    image = next(i for i in images if i.name == "Ubuntu 22.04")
    assert image.extra["os"] == "Ubuntu 22.04 LTS" and image.extra["size"] == 8 << 30
    assert [loc.name for loc in locations] == ["zone1"]

    key = conn.create_key_pair("lc-key")
    assert key.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----") and len(key.fingerprint) == 47
    public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl imported@test"
    imported = conn.import_key_pair_from_string("lc-imported", public)
    assert imported.name == "lc-imported" and ":" in imported.fingerprint
    with pytest.raises(Exception, match="Public key is invalid"):
        conn.import_key_pair_from_string("lc-bad", "ssh-rsa not-base64!")
    assert {k.name for k in conn.list_key_pairs()} == {"lc-key", "lc-imported"}

    group = conn.ex_create_security_group("lc-web", description="web")
    assert group["name"] == "lc-web"
    conn.ex_authorize_security_group_ingress("lc-web", "tcp", "0.0.0.0/0", 80, 80)
    [listed] = [g for g in conn.ex_list_security_groups() if g["name"] == "lc-web"]
    assert [(r["protocol"], r["startport"], r["cidr"]) for r in listed["ingressrule"]] == [("tcp", 80, "0.0.0.0/0")]

    size = next(s for s in sizes if s.name == "Small Instance")
    node = conn.create_node(
        name="lc-node",
        size=size,
        image=image,
        location=locations[0],
        ex_keyname="lc-key",
        ex_security_groups=["lc-web"],
        ex_start_vm=True,
    )
    assert node.state == NodeState.RUNNING and node.private_ips and node.extra["security_group"] == ["lc-web"]
    [found] = [n for n in conn.list_nodes() if n.id == node.id]
    assert found.name == "lc-node"
    assert conn.ex_create_tags([node.id], "UserVm", {"role": "lc"})
    assert [n.extra["tags"] for n in conn.list_nodes() if n.id == node.id] == [{"role": "lc"}]
    assert conn.ex_delete_tags([node.id], "UserVm", ["role"])
    assert conn.reboot_node(node) and conn.ex_stop(node) and conn.ex_start(node)
    volume = conn.create_volume(5, "lc-vol", location=locations[0])
    assert conn.attach_volume(node, volume)
    assert any(v.id == volume.id and v.extra["instance_id"] == node.id for v in conn.list_volumes())
    assert conn.detach_volume(volume) and conn.destroy_volume(volume)
    address = conn.ex_allocate_public_ip(location=locations[0])
    assert address.address in [a.address for a in conn.ex_list_public_ips()]
    assert conn.ex_release_public_ip(address)
    with pytest.raises(Exception, match="in use"):
        conn.ex_delete_security_group("lc-web")
    assert conn.destroy_node(node, ex_expunge=True)
    wait_for(lambda: node.id not in [n.id for n in conn.list_nodes()], "the node to be expunged")
    assert conn.ex_delete_security_group("lc-web") == "true"
    for pair in conn.list_key_pairs():
        assert conn.delete_key_pair(pair)
    with pytest.raises(InvalidCredsError):
        driver(sim, secret="wrong").list_locations()


def test_fault_knob(sim: CloudStackSimulator) -> None:
    api = client(sim, "bob")
    try:
        sim.set_faults(fail=1.0, commands=["listZones"])
        with pytest.raises(cs.CloudStackApiException) as failed:
            api.listZones()
        assert failed.value.error["errorcode"] == 530
        assert api.listServiceOfferings()["count"] == 2  # only the named commands fail
        sim.set_faults(drop=1.0, commands=["listZones"])
        before = ran(sim, "listZones")
        with pytest.raises(requests.ConnectionError):
            api.listZones()
        assert ran(sim, "listZones") == before  # a dropped call never ran
        sim.set_faults(lose=1.0, commands=["createSecurityGroup"])
        before = ran(sim, "createSecurityGroup")
        with pytest.raises(requests.ConnectionError):
            api.createSecurityGroup(name="lost-answer")
        sim.set_faults()
        assert ran(sim, "createSecurityGroup") == before + 1
        assert api.listSecurityGroups(securitygroupname="lost-answer")["count"] == 1  # it ran: only the answer was lost
        api.deleteSecurityGroup(name="lost-answer")
        sim.set_faults(stall=1.0, stall_seconds=0.2, commands=["listZones"])
        assert api.listZones()["count"] == 1
        sim.set_faults(fail=0.5, seed=7, commands=["listZones"])
        outcomes = []
        for _ in range(30):
            try:
                api.listZones()
                outcomes.append(True)
            except cs.CloudStackApiException:
                outcomes.append(False)
        assert 0 < sum(outcomes) < 30
    finally:
        sim.set_faults()
    assert api.listZones()["count"] == 1


def ran(sim: CloudStackSimulator, command: str) -> int:
    """How many calls of ``command`` the simulator ran, by its own count."""
    return int(requests.get(f"{sim.url}/_simulator/calls", timeout=5).json().get(command.lower(), 0))


def test_simulator_stops(tmp_path: Path) -> None:
    server = CloudStackSimulator(tmp_path, {"accounts": [{"name": "x", "apikey": "k", "secretkey": "s"}]})
    try:
        assert cs.CloudStack(endpoint=server.endpoint, key="k", secret="s").listZones()["count"] == 1
    finally:
        server.stop()
    assert server.proc.poll() is not None


def test_cs_networks_offerings_and_reservation(sim: CloudStackSimulator) -> None:
    """createNetwork answers at once (persistent offerings implement the network), updateNetwork's guestvmcidr is
    CloudStack's IP reservation, and deploys need networkids once an account has several isolated networks."""
    api = client(sim, "bob")
    base = basics(api)
    offerings = {o["name"]: o for o in api.listNetworkOfferings(state="Enabled")["networkoffering"]}
    assert {"DefaultIsolatedNetworkOfferingWithSourceNatService", "IsolatedPersistent"} <= set(offerings)
    assert (
        offerings["IsolatedPersistent"]["ispersistent"] and offerings["IsolatedPersistent"]["guestiptype"] == "Isolated"
    )
    [default] = api.listNetworks(zoneid=base["zoneid"])["network"]
    plain = api.createNetwork(
        name="plain",
        displaytext="plain net",
        zoneid=base["zoneid"],
        networkofferingid=offerings["DefaultIsolatedNetworkOfferingWithSourceNatService"]["id"],
        gateway="10.30.0.1",
        netmask="255.255.0.0",
    )["network"]
    assert (plain["state"], plain["cidr"], plain["gateway"], plain["type"]) == (
        "Allocated",
        "10.30.0.0/16",
        "10.30.0.1",
        "Isolated",
    )
    with pytest.raises(cs.CloudStackApiException) as not_implemented:
        api.updateNetwork(id=plain["id"], guestvmcidr="10.30.1.0/24", fetch_result=True)
    assert not_implemented.value.error["errorcode"] == 431 and "Implemented" in not_implemented.value.error["errortext"]
    with pytest.raises(cs.CloudStackApiException) as public:
        api.createNetwork(
            name="bad",
            zoneid=base["zoneid"],
            networkofferingid=plain["networkofferingid"],
            gateway="8.8.8.1",
            netmask="255.255.255.0",
        )
    assert public.value.error["errorcode"] == 431
    lab = api.createNetwork(
        name="lab",
        zoneid=base["zoneid"],
        networkofferingid=offerings["IsolatedPersistent"]["id"],
        gateway="10.31.0.1",
        netmask="255.255.0.0",
    )["network"]
    assert lab["state"] == "Implemented" and lab["displaytext"] == "lab"
    reserved = api.updateNetwork(id=lab["id"], guestvmcidr="10.31.1.0/24", name="lab2", fetch_result=True)["network"]
    assert (reserved["cidr"], reserved["networkcidr"], reserved["name"]) == ("10.31.1.0/24", "10.31.0.0/16", "lab2")
    with pytest.raises(cs.CloudStackApiException) as outside:
        api.updateNetwork(id=lab["id"], guestvmcidr="10.40.0.0/24", fetch_result=True)
    assert outside.value.error["errorcode"] == 431

    with pytest.raises(cs.CloudStackApiException) as ambiguous:
        api.deployVirtualMachine(**base)
    assert "please specify networkIds" in ambiguous.value.error["errortext"]
    vm = api.deployVirtualMachine(networkids=lab["id"], fetch_result=True, **base)["virtualmachine"]
    [nic] = vm["nic"]
    assert nic["networkid"] == lab["id"] and nic["ipaddress"].startswith("10.31.1.") and nic["isdefault"]
    with pytest.raises(cs.CloudStackApiException) as in_use:
        api.deleteNetwork(id=lab["id"], fetch_result=True)
    assert in_use.value.error["errorcode"] == 530
    reset = api.updateNetwork(id=lab["id"], guestvmcidr="10.31.0.0/16", fetch_result=True)["network"]
    assert reset["cidr"] == "10.31.0.0/16" and "networkcidr" not in reset
    api.destroyVirtualMachine(id=vm["id"], expunge=True, fetch_result=True)
    wait_for(lambda: vm_state(api, vm["id"]) is None, "the VM to be expunged")
    for net in (lab, plain):
        assert api.deleteNetwork(id=net["id"], fetch_result=True) == {"success": True}
    assert [n["id"] for n in api.listNetworks()["network"]] == [default["id"]]


def test_cs_nics_added_and_removed(sim: CloudStackSimulator) -> None:
    """addNicToVirtualMachine and removeNicFromVirtualMachine are jobs; the default NIC stays; listNics agrees."""
    api = client(sim)
    vm = api.deployVirtualMachine(fetch_result=True, **basics(api))["virtualmachine"]
    [primary] = vm["nic"]
    added = api.addNicToVirtualMachine(virtualmachineid=vm["id"], networkid=primary["networkid"], fetch_result=True)
    nics = added["virtualmachine"]["nic"]
    [second] = [n for n in nics if n["id"] != primary["id"]]
    assert not second["isdefault"] and second["ipaddress"] != primary["ipaddress"]
    assert second["macaddress"] != primary["macaddress"]
    assert {n["id"] for n in api.listNics(virtualmachineid=vm["id"])["nic"]} == {primary["id"], second["id"]}
    with pytest.raises(cs.CloudStackApiException) as default:
        api.removeNicFromVirtualMachine(virtualmachineid=vm["id"], nicid=primary["id"])
    assert default.value.error["errorcode"] == 431 and "default" in default.value.error["errortext"]
    with pytest.raises(cs.CloudStackApiException) as missing:
        api.removeNicFromVirtualMachine(virtualmachineid=vm["id"], nicid="00000000-0000-4000-8000-000000000000")
    assert missing.value.error["errorcode"] == 431
    left = api.removeNicFromVirtualMachine(virtualmachineid=vm["id"], nicid=second["id"], fetch_result=True)
    assert [n["id"] for n in left["virtualmachine"]["nic"]] == [primary["id"]]
    api.destroyVirtualMachine(id=vm["id"], expunge=True, fetch_result=True)


def test_cs_templates_from_snapshots(sim: CloudStackSimulator) -> None:
    """createTemplate takes a snapshot (or a stopped VM's volume); the template is the account's own: listed by
    ``self`` at once, by ``executable`` once ready; updateTemplate and deleteTemplate touch only one's own."""
    api = client(sim)
    base = basics(api)
    vm = api.deployVirtualMachine(fetch_result=True, **base)["virtualmachine"]
    [root] = api.listVolumes(virtualmachineid=vm["id"], type="ROOT")["volume"]
    with pytest.raises(cs.CloudStackApiException) as running:
        api.createTemplate(name="t", ostypeid=vm["guestosid"], volumeid=root["id"])
    assert running.value.error["errorcode"] == 431
    snap = api.createSnapshot(volumeid=root["id"], fetch_result=True)["snapshot"]
    job = api.createTemplate(name="golden", displaytext="golden image", ostypeid=vm["guestosid"], snapshotid=snap["id"])
    assert set(job) >= {"id", "jobid"}
    [pending] = api.listTemplates(templatefilter="self", id=job["id"])["template"]
    assert not pending["isready"] and not pending["ispublic"] and pending["account"] == "alice"
    assert not api.listTemplates(templatefilter="executable", id=job["id"])
    made = api._jobresult(job["jobid"])["template"]
    assert made["isready"] and made["ostypename"] == "Ubuntu 22.04 LTS" and made["size"] == root["size"]
    assert job["id"] in [t["id"] for t in api.listTemplates(templatefilter="executable")["template"]]
    assert not client(sim, "bob").listTemplates(templatefilter="self")
    assert api.updateTemplate(id=job["id"], name="golden-2", displaytext="patched")["template"]["name"] == "golden-2"
    public = base["templateid"]
    with pytest.raises(cs.CloudStackApiException) as not_owned:
        api.updateTemplate(id=public, name="mine")
    assert not_owned.value.error["errorcode"] == 531
    api.deleteSnapshot(id=snap["id"], fetch_result=True)
    conn = driver(sim)
    [image] = [i for i in conn.list_images() if i.id == job["id"]]
    assert image.name == "golden-2" and image.extra["displaytext"] == "patched"
    assert api.deleteTemplate(id=job["id"], fetch_result=True) == {"success": True}
    assert not api.listTemplates(templatefilter="self")
    api.destroyVirtualMachine(id=vm["id"], expunge=True, fetch_result=True)


def test_libcloud_networks_nics_and_snapshot_templates(sim: CloudStackSimulator) -> None:
    """libcloud's own network, NIC and snapshot-template calls parse the simulator's answers."""
    conn = driver(sim, "bob")
    location = conn.list_locations()[0]
    offering = next(o for o in conn.ex_list_network_offerings() if o.name == "IsolatedPersistent")
    assert offering.guest_ip_type == "Isolated" and not offering.for_vpc
    net = conn.ex_create_network("lc net", "lc-net", offering, location, gateway="10.33.0.1", netmask="255.255.255.0")
    listed = {n.id: n for n in conn.ex_list_networks()}
    assert listed[net.id].name == "lc-net" and listed[net.id].extra["zone_name"] == "zone1"
    size = conn.list_sizes()[0]
    image = next(i for i in conn.list_images() if i.name == "Ubuntu 22.04")
    node = conn.create_node(name="lc-nic", size=size, image=image, location=location, networks=[listed[net.id]])
    [nic] = conn.ex_list_nics(node)
    assert nic.network_id == net.id and nic.is_default and nic.ip_address.startswith("10.33.0.")
    assert conn.ex_attach_nic_to_node(node, listed[net.id])
    extra = next(n for n in conn.ex_list_nics(node) if n.id != nic.id)
    assert conn.ex_detach_nic_from_node(extra, node)
    assert [n.id for n in conn.ex_list_nics(node)] == [nic.id]
    root = next(v for v in conn.list_volumes() if v.extra["instance_id"] == node.id)
    snapshot = conn.create_volume_snapshot(root)
    ostype = client(sim, "bob").listTemplates(templatefilter="executable", id=image.id)["template"][0]["ostypeid"]
    template = conn.ex_create_snapshot_template(snapshot, "lc-template", ostype)
    assert template.name == "lc-template" and template.extra["os"] == "Ubuntu 22.04 LTS"
    assert conn.destroy_volume_snapshot(snapshot)
    assert conn.destroy_node(node, ex_expunge=True)
    wait_for(lambda: node.id not in [n.id for n in conn.list_nodes()], "the node to be expunged")
    assert conn.ex_delete_network(listed[net.id])


def test_tag_rules_as_cloudstack_keeps_them(sim: CloudStackSimulator) -> None:
    """createTags fails its job for an empty value (431) or a key the resource has (530); deleteTags matches keys
    without case and fails when nothing matches; tags show in the resource's ``tags``; public templates are not
    the user's to tag (531)."""
    api = client(sim, "bob")
    base = basics(api)
    group = api.createSecurityGroup(name="tag-rules")["securitygroup"]

    def tag(**tags: str) -> dict[str, Any]:
        pairs = [{"key": k, "value": v} for k, v in tags.items()]
        job = api.createTags(resourceids=group["id"], resourcetype="SecurityGroup", tags=pairs)
        return wait_for(lambda: _ended(api, job["jobid"]), "the createTags job")

    assert tag(Env="prod")["jobstatus"] == 1
    failed = tag(env="again")
    assert (failed["jobstatus"], failed["jobresult"]["errorcode"]) == (2, 530)
    failed = tag(blank="")
    assert (failed["jobstatus"], failed["jobresult"]["errorcode"]) == (2, 431)
    [listed] = api.listSecurityGroups(id=group["id"])["securitygroup"]
    assert [(t["key"], t["value"], t["resourcetype"]) for t in listed["tags"]] == [("Env", "prod", "SecurityGroup")]
    job = api.deleteTags(resourceids=group["id"], resourcetype="SecurityGroup", tags=[{"key": "absent"}])
    assert wait_for(lambda: _ended(api, job["jobid"]), "the deleteTags job")["jobresult"]["errorcode"] == 530
    api.deleteTags(resourceids=group["id"], resourcetype="SecurityGroup", tags=[{"key": "ENV"}], fetch_result=True)
    assert not api.listTags(resourceid=group["id"])
    with pytest.raises(cs.CloudStackApiException) as denied:
        api.createTags(resourceids=base["templateid"], resourcetype="Template", tags=[{"key": "k", "value": "v"}])
    assert denied.value.error["errorcode"] == 531
    api.deleteSecurityGroup(id=group["id"])


def _ended(api: cs.CloudStack, jobid: str) -> dict[str, Any] | None:
    job = api.queryAsyncJobResult(jobid=jobid)
    return job if job["jobstatus"] != 0 else None
