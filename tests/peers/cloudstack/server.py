"""A stateful CloudStack API simulator: ``python -m peers.cloudstack.server --port P --config FILE``.

Written from CloudStack's API reference: requests are verified as ``ApiServer.verifyRequest`` does (parameter
names sorted as given, values form-encoded the Java way, the whole string lower-cased, HMAC-SHA1 with the
account's secret key, base64; ``signatureVersion=3`` requests carry an ``expires`` that must lie ahead), answers
come in the ``<command>response`` envelope as JSON (``response=json``) or XML (the default), lists carry
``count`` and are empty objects when nothing matches, asynchronous commands answer ``jobid`` and are followed
with ``queryAsyncJobResult``, and errors use CloudStack's ``errorcode``/``cserrorcode`` pairs with the HTTP
status set to the error code. State changes happen lazily on each request from a due-time queue, so the
timings are exact without background threads.

Control (outside ``/client/api``, for tests only): ``POST /_simulator/faults`` and ``POST /_simulator/timings``
with a JSON object, ``GET /_simulator/ping``, ``GET /_simulator/calls`` (how many calls of each lower-cased
command ran: what a client sent, counted by the cloud).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import heapq
import hmac
import ipaddress
import itertools
import json
import random
import re
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit
from xml.sax.saxutils import escape

if __name__ == "__main__":  # run with ``-m``: the command modules import this module under its own name
    sys.modules.setdefault("peers.cloudstack.server", sys.modules[__name__])

VERSION = "4.18.0.0"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


# --- errors (ApiErrorCode, CSExceptionErrorCode) ---------------------------------------------------------------


@dataclass
class ApiError(Exception):
    """A CloudStack error answer: ``errorcode`` is also the HTTP status, ``cserrorcode`` names the exception."""

    errorcode: int
    errortext: str
    cserrorcode: int = 9999


def param_error(text: str) -> ApiError:
    return ApiError(431, text, 4350)  # PARAM_ERROR, InvalidParameterValueException


def denied(text: str) -> ApiError:
    return ApiError(531, text, 4365)  # ACCOUNT_ERROR, PermissionDeniedException


def in_use(text: str) -> ApiError:
    return ApiError(536, text, 4375)  # RESOURCE_IN_USE_ERROR, ResourceInUseException


def allocation_error(text: str) -> ApiError:
    return ApiError(534, text, 4370)  # RESOURCE_ALLOCATION_ERROR, ResourceAllocationException


INTERNAL = 530  # INTERNAL_ERROR, cserrorcode 4250 (CloudRuntimeException)
UNAUTHORIZED_TEXT = "unable to verify user credentials and/or request signature"


def java_urlencode(value: str) -> str:
    """``URLEncoder.encode(v, "UTF-8").replaceAll("\\+", "%20")``: only letters, digits and ``.-*_`` stay."""
    return quote(value, safe="*").replace("~", "%7E")


def signature_of(params: dict[str, str], secret: str) -> str:
    """The signature CloudStack expects for ``params`` (without ``signature``)."""
    unsigned = "&".join(f"{name}={java_urlencode(params[name])}" for name in sorted(params))
    digest = hmac.new(secret.encode(), unsigned.lower().encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def now_text() -> str:
    return datetime.now(UTC).strftime(DATE_FORMAT)


def new_id() -> str:
    return str(uuid.uuid4())


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


# --- configuration ---------------------------------------------------------------------------------------------

#: Seconds each transition takes (CloudStack's are minutes; tests want them short).
DEFAULT_TIMINGS: dict[str, float] = {
    "job": 0.1,  # a job with no VM transition (volumes, IPs, rules, tags)
    "start": 0.4,  # Starting -> Running
    "stop": 0.3,  # Stopping -> Stopped
    "reboot": 0.3,
    "destroy": 0.3,  # Stopping -> Destroyed
    "expunge": 0.3,  # Expunging -> gone
    "expunge_delay": 60.0,  # Destroyed stays listed this long without expunge=true (CloudStack's expunge.delay)
    "snapshot": 0.3,  # Creating -> BackedUp
}

DEFAULT_CONFIG: dict[str, Any] = {
    "accounts": [
        {"name": "alice", "apikey": "alice-key", "secretkey": "alice-secret", "projects": ["alice-project"]},
        {"name": "bob", "apikey": "bob-key", "secretkey": "bob-secret"},
    ],
    "zones": [{"name": "zone1"}],
    "templates": [{"name": "Ubuntu 22.04", "ostypename": "Ubuntu 22.04 LTS", "size_gb": 8}],
    "serviceofferings": [
        {"name": "Small Instance", "cpunumber": 1, "cpuspeed": 1000, "memory": 1024},
        {"name": "Medium Instance", "cpunumber": 2, "cpuspeed": 1000, "memory": 4096},
    ],
    "diskofferings": [
        {"name": "Small", "disksize": 5},
        {"name": "Custom", "disksize": 0, "iscustomized": True},
    ],
    "timings": DEFAULT_TIMINGS,
    "faults": {},
}


@dataclass
class Faults:
    """Fractions of API calls (optionally only ``commands``) that are dropped unanswered before running
    (``drop``), run with the answer lost (``lose``), refused with a 530 (``fail``) or delayed ``stall_seconds``
    (``stall``)."""

    drop: float = 0.0
    lose: float = 0.0
    fail: float = 0.0
    stall: float = 0.0
    stall_seconds: float = 2.0
    commands: list[str] | None = None
    seed: int | None = None

    def pick(self, rng: random.Random, command: str) -> str | None:
        if self.commands is not None and command.lower() not in {c.lower() for c in self.commands}:
            return None
        roll = rng.random()
        for kind in ("drop", "lose", "fail", "stall"):
            share = getattr(self, kind)
            if roll < share:
                return kind
            roll -= share
        return None


@dataclass
class Account:
    name: str
    apikey: str
    secretkey: str
    id: str = field(default_factory=new_id)
    userid: str = field(default_factory=new_id)
    domain: str = "ROOT"
    domainid: str = "1c9b1a0e-0000-4000-8000-000000000001"
    limits: dict[str, int] = field(default_factory=dict)


@dataclass
class Owner:
    """Who holds a resource: an account, or one of its projects (CloudStack's project account)."""

    account: Account
    project: dict[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"account": self.account.name, "domainid": self.account.domainid}
        out["domain"] = self.account.domain
        if self.project:
            out.update(account=f"PrjAcct-{self.project['name']}-1", project=self.project["name"])
            out["projectid"] = self.project["id"]
        return out

    def key(self) -> tuple[str, str | None]:
        return (self.account.id, self.project["id"] if self.project else None)


# --- the cloud -------------------------------------------------------------------------------------------------

RESOURCE_TYPES = {  # createTags' resourcetype -> the simulator's table
    "uservm": "vms",
    "volume": "volumes",
    "snapshot": "snapshots",
    "securitygroup": "securitygroups",
    "publicipaddress": "ips",
    "template": "templates",
    "network": "networks",
}


def type_name(kind: str) -> str:
    """CloudStack's spelling of a lower-cased resource type (``ResourceObjectType``)."""
    cased = {"uservm": "UserVm", "publicipaddress": "PublicIpAddress", "securitygroup": "SecurityGroup"}
    return cased.get(kind, kind.capitalize())


LIMIT_TYPES = {"vms": "user_vm", "volumes": "volume", "ips": "public_ip", "snapshots": "snapshot"}


@dataclass
class Job:
    id: str
    owner: Owner
    cmd: str
    instancetype: str
    instanceid: str | None
    created: str = field(default_factory=now_text)
    status: int = 0
    resultcode: int = 0
    result: dict[str, Any] | None = None


class Cloud:
    """All state, behind one lock; ``advance()`` applies every transition whose time has come."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.lock = threading.RLock()
        self.config = config
        self.timings = {**DEFAULT_TIMINGS, **config.get("timings", {})}
        self.faults = Faults(**config.get("faults", {}))
        self.rng = random.Random(self.faults.seed)
        self.queue: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        self.tables: dict[str, dict[str, dict[str, Any]]] = {
            name: {}
            for name in ("vms", "volumes", "snapshots", "securitygroups", "ips", "networks", "keypairs", "projects")
        }
        self.tables["templates"] = {}
        self.jobs: dict[str, Job] = {}
        self.accounts: dict[str, Account] = {}
        self.public_pool = (str(ip) for ip in ipaddress.ip_network("203.0.113.0/24").hosts())
        self.zones: dict[str, dict[str, Any]] = {}
        for zone in config["zones"]:
            zid = zone.get("id", new_id())
            self.zones[zid] = {
                "id": zid,
                "name": zone["name"],
                "description": zone.get("description", zone["name"]),
                "networktype": zone.get("networktype", "Advanced"),
                "securitygroupsenabled": zone.get("securitygroupsenabled", True),
                "allocationstate": "Enabled",
                "localstorageenabled": False,
                "dhcpprovider": "VirtualRouter",
                "tags": [],
            }
        for tpl in config["templates"]:
            tid = tpl.get("id", new_id())
            zones = [z for z in self.zones.values() if tpl.get("zone") in (None, z["name"])]
            self.tables["templates"][tid] = {
                "id": tid,
                "name": tpl["name"],
                "displaytext": tpl.get("displaytext", tpl["name"]),
                "ispublic": True,
                "isfeatured": True,
                "isready": True,
                "passwordenabled": tpl.get("passwordenabled", False),
                "format": tpl.get("format", "QCOW2"),
                "hypervisor": tpl.get("hypervisor", "KVM"),
                "ostypeid": tpl.get("ostypeid", new_id()),
                "ostypename": tpl.get("ostypename", "Other Linux (64-bit)"),
                "size": int(tpl.get("size_gb", 8)) << 30,
                "templatetype": "USER",
                "crossZones": False,
                "isextractable": False,
                "status": "Download Complete",
                "created": now_text(),
                "account": "admin",
                "domain": "ROOT",
                "domainid": Account.domainid,
                "zoneid": zones[0]["id"],
                "zonename": zones[0]["name"],
                "_fails": bool(tpl.get("fails", False)),
            }
        self.serviceofferings: dict[str, dict[str, Any]] = {}
        for so in config["serviceofferings"]:
            sid = so.get("id", new_id())
            self.serviceofferings[sid] = {
                "id": sid,
                "name": so["name"],
                "displaytext": so.get("displaytext", f"{so['cpunumber']} CPU, {so['memory']} MB"),
                "cpunumber": so["cpunumber"],
                "cpuspeed": so.get("cpuspeed", 1000),
                "memory": so["memory"],
                "created": now_text(),
                "storagetype": "shared",
                "offerha": False,
                "limitcpuuse": False,
                "issystem": False,
                "defaultuse": False,
                "iscustomized": False,
            }
        self.diskofferings: dict[str, dict[str, Any]] = {}
        for do in config["diskofferings"]:
            did = do.get("id", new_id())
            self.diskofferings[did] = {
                "id": did,
                "name": do["name"],
                "displaytext": do.get("displaytext", do["name"]),
                "disksize": do.get("disksize", 0),
                "iscustomized": bool(do.get("iscustomized", False)),
                "created": now_text(),
                "storagetype": "shared",
            }
        for number, spec in enumerate(config["accounts"]):
            account = Account(spec["name"], spec["apikey"], spec["secretkey"], limits=dict(spec.get("limits", {})))
            self.accounts[account.apikey] = account
            owners = [Owner(account)]
            for name in spec.get("projects", []):
                project = {"id": new_id(), "name": name, "displaytext": name, "state": "Active", "_account": account}
                self.tables["projects"][project["id"]] = project
                owners.append(Owner(account, project))
            for sub, owner in enumerate(owners):
                self.add("securitygroups", owner, name="default", description="Default Security Group")
                for zid, zone in self.zones.items():
                    self.add(
                        "networks",
                        owner,
                        name=f"{owner.fields()['account']}-network",
                        displaytext="default guest network",
                        zoneid=zid,
                        zonename=zone["name"],
                        type="Isolated",
                        traffictype="Guest",
                        state="Implemented",
                        cidr=f"10.{number + 1}.{sub}.0/24",
                        gateway=f"10.{number + 1}.{sub}.1",
                        netmask="255.255.255.0",
                        canusefordeploy=True,
                        isdefault=True,
                        issystem=False,
                        acltype="Account",
                        networkdomain="cs.internal",
                        networkofferingname="DefaultIsolatedNetworkOfferingWithSourceNatService",
                        networkofferingdisplaytext="Offering for Isolated networks with Source Nat service enabled",
                        networkofferingid="8e0d9b7f-0000-4000-8000-000000000001",
                        service=[{"name": "Dhcp"}, {"name": "Dns"}, {"name": "SourceNat"}, {"name": "StaticNat"}],
                        _hosts=(str(h) for h in list(ipaddress.ip_network(f"10.{number + 1}.{sub}.0/24").hosts())[9:]),
                    )

    # -- bookkeeping --

    def add(self, table: str, owner: Owner, **fields: Any) -> dict[str, Any]:
        record = {"id": new_id(), "_owner": owner, "_tags": {}, "created": now_text(), **fields}
        self.tables[table][record["id"]] = record
        return record

    def at(self, delay: float, action: Callable[[], None]) -> float:
        due = time.monotonic() + max(delay, 0.0)
        heapq.heappush(self.queue, (due, next(self.seq), action))
        return due

    def advance(self) -> None:
        now = time.monotonic()
        while self.queue and self.queue[0][0] <= now:
            _, _, action = heapq.heappop(self.queue)
            action()

    def count(self, table: str, account: Account) -> int:
        return sum(1 for r in self.tables[table].values() if r["_owner"].account is account and not r.get("_gone"))

    def check_limit(self, table: str, account: Account) -> None:
        limit = account.limits.get(LIMIT_TYPES[table])
        if limit is not None and self.count(table, account) >= limit:
            raise allocation_error(
                f"Maximum number of resources of type '{LIMIT_TYPES[table]}' for account name={account.name} "
                f"in Domain Id=1 has been exceeded."
            )

    def render(self, table: str, record: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in record.items() if not k.startswith("_")}
        if "_owner" in record:
            out.update(record["_owner"].fields())
        if "_tags" in record:
            kind = {v: k for k, v in RESOURCE_TYPES.items()}.get(table, table)
            out["tags"] = [self.tag_view(record, kind, k, v) for k, v in record["_tags"].items()]
        extra = getattr(self, f"_extra_{table}", None)
        if extra:
            extra(record, out)
        return out

    def tag_view(self, record: dict[str, Any], kind: str, key: str, value: str) -> dict[str, Any]:
        owner = record["_owner"].fields() if "_owner" in record else {}
        return {"key": key, "value": value, "resourcetype": type_name(kind), "resourceid": record["id"], **owner}

    def _extra_vms(self, vm: dict[str, Any], out: dict[str, Any]) -> None:
        out["securitygroup"] = [
            {"id": g["id"], "name": g["name"], "description": g.get("description", "")}
            for g in (self.tables["securitygroups"].get(i) for i in vm["_groups"])
            if g
        ]
        ip = next((i for i in self.tables["ips"].values() if i.get("virtualmachineid") == vm["id"]), None)
        if ip:
            out.update(publicip=ip["ipaddress"], publicipid=ip["id"])

    def _extra_volumes(self, vol: dict[str, Any], out: dict[str, Any]) -> None:
        vm = self.tables["vms"].get(vol.get("virtualmachineid") or "")
        if vm:
            out.update(vmname=vm["name"], vmdisplayname=vm["displayname"], vmstate=vm["state"])

    def _extra_securitygroups(self, group: dict[str, Any], out: dict[str, Any]) -> None:
        out["virtualmachinecount"] = len(self.group_users(group))
        out["virtualmachineids"] = self.group_users(group)

    def group_users(self, group: dict[str, Any]) -> list[str]:
        return [vm["id"] for vm in self.tables["vms"].values() if group["id"] in vm["_groups"]]


# --- request scope and lookups ---------------------------------------------------------------------------------


@dataclass
class Call:
    """One API call: the caller, its lower-cased parameters, and the cloud."""

    cloud: Cloud
    account: Account
    command: str
    params: dict[str, str]

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.params.get(name, default)

    def need(self, name: str) -> str:
        value = self.params.get(name)
        if value is None or value == "":
            raise param_error(f"Unable to execute API command {self.command.lower()} due to missing parameter {name}")
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.params.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise param_error(
                f"Unable to execute API command {self.command.lower()} due to invalid value. "
                f"Invalid parameter {name} value={value} due to incorrect long value format"
            ) from None

    def invalid(self, name: str, value: str) -> ApiError:
        return param_error(
            f"Unable to execute API command {self.command.lower()} due to invalid value. Invalid parameter {name} "
            f"value={value} due to incorrect long value format, or entity does not exist or due to incorrect "
            f"parameter annotation for the field in api cmd class."
        )

    def owner(self) -> Owner:
        """Whose resource a create makes: the caller's, or its project's when ``projectid`` is given."""
        pid = self.get("projectid")
        if not pid:
            return Owner(self.account)
        project = self.cloud.tables["projects"].get(pid)
        if project is None:
            raise self.invalid("projectid", pid)
        if project["_account"] is not self.account:
            raise denied(f"Account {self.account.name} does not have permission to access project {pid}")
        return Owner(self.account, project)

    def visible(self, record: dict[str, Any]) -> bool:
        """Listed for this call: the caller's own, or the asked project's (``projectid=-1``: any of its)."""
        owner: Owner = record["_owner"]
        if owner.account is not self.account or record.get("_gone"):
            return False
        pid = self.get("projectid")
        if pid == "-1":
            return owner.project is not None
        if pid:
            return owner.project is not None and owner.project["id"] == pid
        return owner.project is None

    def find(self, table: str, name: str, value: str | None = None) -> dict[str, Any]:
        """The record ``name`` designates; another account's is refused as CloudStack refuses it."""
        value = value if value is not None else self.need(name)
        record = self.cloud.tables[table].get(value)
        if record is None or record.get("_gone"):
            raise self.invalid(name, value)
        owner = record.get("_owner")
        if owner is not None and owner.account is not self.account:
            raise denied(f"Account '{self.account.name}' does not have permission to operate with resource {value}")
        return record

    def tags_param(self) -> dict[str, str]:
        found: dict[int, dict[str, str]] = {}
        for name, value in self.params.items():
            match = re.fullmatch(r"tags\[(\d+)\]\.(key|value)", name)
            if match:
                found.setdefault(int(match[1]), {})[match[2]] = value
        return {t["key"]: t.get("value", "") for _, t in sorted(found.items()) if "key" in t}

    def listing(self, table: str, key: str, records: list[dict[str, Any]], rendered: bool = False) -> dict[str, Any]:
        """``count`` and one page of ``records`` (``page``/``pagesize``), as CloudStack's ListResponse."""
        items = records if rendered else [self.cloud.render(table, r) for r in records]
        keyword = self.get("keyword")
        if keyword:
            items = [i for i in items if keyword.lower() in str(i.get("name", "")).lower()]
        wanted = self.tags_param()
        if wanted:
            items = [i for i in items if all({"key": k, "value": v} in _kv(i) for k, v in wanted.items())]
        page, pagesize = self.integer("page"), self.integer("pagesize")
        if pagesize is not None and page is None:
            raise param_error('"page" parameter is required when "pagesize" is specified')
        if page is not None:
            size = 500 if pagesize is None else pagesize
            if page < 1 or (size < 1 and size != -1):
                raise param_error("Invalid page or pagesize parameter")
            if size != -1:
                total = len(items)
                items = items[(page - 1) * size : page * size]
                return _list_body(key, items, total)
        return _list_body(key, items, len(items))


def _kv(item: dict[str, Any]) -> list[dict[str, str]]:
    return [{"key": t["key"], "value": t["value"]} for t in item.get("tags", [])]


def _list_body(key: str, items: list[dict[str, Any]], total: int) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if total:
        body["count"] = total
    if items:
        body[key] = items
    return body


# --- asynchronous jobs -----------------------------------------------------------------------------------------


def start_job(
    call: Call,
    cmd: str,
    delay: float,
    finish: Callable[[], dict[str, Any]],
    instance: tuple[str, str | None] = ("None", None),
    vm: dict[str, Any] | None = None,
) -> Job:
    """Queue ``finish`` after ``delay`` (after the VM's previous job: CloudStack serialises work per VM)."""
    cloud = call.cloud
    job = Job(new_id(), Owner(call.account), cmd, instance[0], instance[1])
    cloud.jobs[job.id] = job

    def run() -> None:
        try:
            job.result = finish()
            job.status = 1
        except ApiError as error:
            job.status, job.resultcode = 2, error.errorcode
            job.result = {"errorcode": error.errorcode, "errortext": error.errortext}
        if vm is not None:
            vm["_busy"] = max(0.0, vm.get("_busy", 0.0) - 1)

    if vm is not None:
        start = max(time.monotonic(), vm.get("_free_at", 0.0))
        vm["_free_at"] = start + delay
        heapq.heappush(cloud.queue, (start + delay, next(cloud.seq), run))
    else:
        cloud.at(delay, run)
    return job


def job_view(cloud: Cloud, job: Job) -> dict[str, Any]:
    out: dict[str, Any] = {
        "accountid": job.owner.account.id,
        "userid": job.owner.account.userid,
        "cmd": job.cmd,
        "jobstatus": job.status,
        "jobprocstatus": 0,
        "jobresultcode": job.resultcode,
        "jobresulttype": "object",
        "created": job.created,
        "jobid": job.id,
    }
    if job.instanceid:
        out.update(jobinstancetype=job.instancetype, jobinstanceid=job.instanceid)
    if job.status != 0:
        out["jobresult"] = job.result
        out["completed"] = now_text()
    return out


def query_async_job_result(call: Call) -> dict[str, Any]:
    jobid = call.need("jobid")
    job = call.cloud.jobs.get(jobid)
    if job is None:
        raise call.invalid("jobid", jobid)
    if job.owner.account is not call.account:
        raise denied(f"Account {call.account.name} does not have permission to access job {jobid}")
    return job_view(call.cloud, job)


# --- commands: offerings, zones, templates, projects, networks -------------------------------------------------


def by_id_and_name(call: Call, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rid, name = call.get("id"), call.get("name")
    return [r for r in records if (not rid or r["id"] == rid) and (not name or r["name"] == name)]


def list_zones(call: Call) -> dict[str, Any]:
    return call.listing("zones", "zone", by_id_and_name(call, list(call.cloud.zones.values())), rendered=True)


def list_service_offerings(call: Call) -> dict[str, Any]:
    records = by_id_and_name(call, list(call.cloud.serviceofferings.values()))
    return call.listing("serviceofferings", "serviceoffering", records, rendered=True)


def list_disk_offerings(call: Call) -> dict[str, Any]:
    records = by_id_and_name(call, list(call.cloud.diskofferings.values()))
    return call.listing("diskofferings", "diskoffering", records, rendered=True)


def list_projects(call: Call) -> dict[str, Any]:
    records = [p for p in call.cloud.tables["projects"].values() if p["_account"] is call.account]
    items = [
        {
            **{k: v for k, v in p.items() if not k.startswith("_")},
            "account": call.account.name,
            "domain": call.account.domain,
            "domainid": call.account.domainid,
            "owner": [{"account": call.account.name}],
            "tags": [],
            "vmtotal": sum(1 for v in call.cloud.tables["vms"].values() if v["_owner"].project is p),
            "vmlimit": "Unlimited",
        }
        for p in by_id_and_name(call, records)
    ]
    return call.listing("projects", "project", items, rendered=True)


def owned_list(call: Call, table: str, key: str, match: Callable[[dict[str, Any]], bool] = lambda r: True):
    if call.get("projectid") not in (None, "", "-1"):
        call.owner()  # another account's project is refused, not listed empty
    records = [r for r in call.cloud.tables[table].values() if call.visible(r) and match(r)]
    return call.listing(table, key, by_id_and_name(call, records) if table != "ips" else records)


def list_networks(call: Call) -> dict[str, Any]:
    zone = call.get("zoneid")
    return owned_list(call, "networks", "network", lambda r: not zone or r["zoneid"] == zone)


# --- commands: virtual machines --------------------------------------------------------------------------------

VM_CMD = "org.apache.cloudstack.api.command.user.vm."


def vm_result(cloud: Cloud, vm: dict[str, Any]) -> dict[str, Any]:
    return {"virtualmachine": cloud.render("vms", vm)}


def deploy_virtual_machine(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    zone_id = call.need("zoneid")
    zone = cloud.zones.get(zone_id)
    if zone is None:
        raise call.invalid("zoneid", zone_id)
    offering = cloud.serviceofferings.get(call.need("serviceofferingid"))
    if offering is None:
        raise call.invalid("serviceofferingid", call.params["serviceofferingid"])
    template = cloud.tables["templates"].get(call.need("templateid"))
    if template is None:
        raise call.invalid("templateid", call.params["templateid"])
    owner = call.owner()
    cloud.check_limit("vms", call.account)
    networks = guest_networks.deploy_networks(call, zone_id, owner.key())
    keypair = call.get("keypair")
    if keypair and not any(
        k["name"] == keypair and k["_owner"].key() == owner.key() for k in cloud.tables["keypairs"].values()
    ):
        raise param_error(f"Unable to find key pair by name {keypair}")
    groups: list[str] = []
    for name in (call.get("securitygroupnames") or "").split(","):
        if name:
            match = [
                g
                for g in cloud.tables["securitygroups"].values()
                if g["name"] == name and g["_owner"].key() == owner.key()
            ]
            if not match:
                raise param_error(f"Unable to find group by name {name}")
            groups.append(match[0]["id"])
    groups += [
        call.find("securitygroups", "securitygroupids", g)["id"]
        for g in (call.get("securitygroupids") or "").split(",")
        if g
    ]
    if not groups:
        groups = [
            g["id"]
            for g in cloud.tables["securitygroups"].values()
            if g["name"] == "default" and g["_owner"].key() == owner.key()
        ]
    name = call.get("name") or f"VM-{new_id()}"
    if call.get("name") and not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,62}", name):
        raise param_error(
            "Invalid name. Vm name can contain ASCII letters 'a' through 'z', the digits '0' through '9', and the "
            "hyphen ('-'), must be between 1 and 63 characters long, and can't start or end with \"-\" and can't "
            "start with digit"
        )
    _unique_host_name(cloud, name, networks)
    nics = [guest_networks.new_nic(net, next(net["_hosts"]), number == 0) for number, net in enumerate(networks)]
    start = call.get("startvm") is None or truthy(call.get("startvm"))
    vm = cloud.add(
        "vms",
        owner,
        name=name,
        displayname=call.get("displayname") or name,
        state="Starting" if start else "Stopped",
        haenable=False,
        zoneid=zone_id,
        zonename=zone["name"],
        templateid=template["id"],
        templatename=template["name"],
        templatedisplaytext=template["displaytext"],
        passwordenabled=template["passwordenabled"],
        serviceofferingid=offering["id"],
        serviceofferingname=offering["name"],
        cpunumber=offering["cpunumber"],
        cpuspeed=offering["cpuspeed"],
        memory=offering["memory"],
        guestosid=template["ostypeid"],
        rootdeviceid=0,
        rootdevicetype="ROOT",
        hypervisor=template["hypervisor"],
        keypair=keypair,
        userdata=call.get("userdata"),
        nic=nics,
        affinitygroup=[],
        isdynamicallyscalable=False,
        _groups=groups,
    )
    if vm["keypair"] is None:
        del vm["keypair"]
    if vm["userdata"] is None:
        del vm["userdata"]
    size = call.integer("rootdisksize")
    root_size = (size << 30) if size else template["size"]
    cloud.add(
        "volumes",
        owner,
        name=f"ROOT-{vm['id'][:8]}",
        type="ROOT",
        deviceid=0,
        virtualmachineid=vm["id"],
        zoneid=zone_id,
        zonename=zone["name"],
        size=root_size,
        state="Ready",
        storagetype="shared",
        hypervisor=template["hypervisor"],
        destroyed=False,
        isextractable=False,
        serviceofferingid=offering["id"],
        serviceofferingname=offering["name"],
        _root=True,
    )
    fails = template["_fails"]

    def finish() -> dict[str, Any]:
        if fails:
            vm["state"] = "Error"
            raise ApiError(533, f"Unable to create a deployment for VM[User|{name}]", 4310)
        if start:
            vm["state"] = "Running"
        return vm_result(cloud, vm)

    job = start_job(
        call,
        VM_CMD + "DeployVMCmd",
        cloud.timings["start" if start else "job"],
        finish,
        ("VirtualMachine", vm["id"]),
        vm,
    )
    return {"id": vm["id"], "jobid": job.id}


def _unique_host_name(cloud: Cloud, name: str, networks: list[dict[str, Any]]) -> None:
    """CloudStack keeps a host name unique among the VMs of a network until they are expunged (431 otherwise)."""
    wanted = {net["id"]: net for net in networks}
    for vm in cloud.tables["vms"].values():
        if vm.get("_gone") or vm["state"] == "Expunging" or vm["name"].lower() != name.lower():
            continue
        shared = next((wanted[n["networkid"]] for n in vm.get("nic") or [] if n.get("networkid") in wanted), None)
        if shared is not None:
            raise param_error(
                f"The vm with hostName {name} already exists in the network domain: "
                f"{shared.get('networkdomain', 'cs.internal')}; network={shared['name']}"
            )


def list_virtual_machines(call: Call) -> dict[str, Any]:
    state, zone = call.get("state"), call.get("zoneid")
    return owned_list(
        call,
        "vms",
        "virtualmachine",
        lambda v: (not state or v["state"].lower() == state.lower()) and (not zone or v["zoneid"] == zone),
    )


@dataclass(frozen=True)
class Transition:
    """A VM action: states it may start from, the state while it runs, the state it ends in, its timing."""

    cmd: str
    allowed: frozenset[str]
    during: str | None
    after: str | None
    timing: str
    noop_in: frozenset[str] = frozenset()


TRANSITIONS: dict[str, Transition] = {
    "startvirtualmachine": Transition(
        "StartVMCmd",
        frozenset({"Stopped", "Starting", "Running"}),
        "Starting",
        "Running",
        "start",
        frozenset({"Running"}),
    ),
    "stopvirtualmachine": Transition(
        "StopVMCmd",
        frozenset({"Running", "Starting", "Stopping", "Stopped", "Error"}),
        "Stopping",
        "Stopped",
        "stop",
        frozenset({"Stopped"}),
    ),
    "rebootvirtualmachine": Transition("RebootVMCmd", frozenset({"Running"}), None, "Running", "reboot"),
    "destroyvirtualmachine": Transition(
        "DestroyVMCmd",
        frozenset({"Running", "Starting", "Stopping", "Stopped", "Error"}),
        "Stopping",
        "Destroyed",
        "destroy",
    ),
}


def vm_action(call: Call) -> dict[str, Any]:
    """start/stop (``forced``)/reboot/destroy (``expunge``): the state moves at once, the job ends later."""
    cloud = call.cloud
    rule = TRANSITIONS[call.command.lower()]
    vm = call.find("vms", "id")
    expected_state = vm["state"]

    def finish() -> dict[str, Any]:
        if vm["state"] not in rule.allowed | ({rule.during} if rule.during else set()):
            raise ApiError(INTERNAL, f"Unable to {rule.cmd[:-5].lower()} vm {vm['name']} in state {vm['state']}", 4250)
        if vm["state"] in rule.noop_in:
            return vm_result(cloud, vm)
        if rule.after:
            vm["state"] = rule.after
        if rule.after == "Destroyed":
            for vol in list(cloud.tables["volumes"].values()):
                if vol.get("virtualmachineid") == vm["id"] and not vol.get("_root"):
                    vol.pop("virtualmachineid", None)
                    vol.pop("deviceid", None)
                    vol["state"] = "Ready"
            for ip in cloud.tables["ips"].values():
                if ip.get("virtualmachineid") == vm["id"]:
                    _drop_nat(ip)
            if truthy(call.get("expunge")):
                expunge(cloud, vm, 0.0)
            else:
                expunge(cloud, vm, cloud.timings["expunge_delay"])
        return vm_result(cloud, vm)

    if expected_state == "Destroyed" and rule.after == "Destroyed" and truthy(call.get("expunge")):
        finish_expunge = True
    else:
        finish_expunge = False
    if expected_state not in rule.allowed and not finish_expunge:
        raise param_error(f"Unable to {rule.cmd[:-5].lower()} VM {vm['id']}: it is in state {expected_state}")
    if rule.cmd == "RebootVMCmd" and truthy(call.get("forced")):
        return force_reboot(call, vm)
    if rule.during and expected_state not in rule.noop_in and vm.get("_free_at", 0) <= time.monotonic():
        vm["state"] = rule.during
    if finish_expunge:

        def finish_now() -> dict[str, Any]:
            expunge(cloud, vm, 0.0)
            return vm_result(cloud, vm)

        job = start_job(call, VM_CMD + rule.cmd, cloud.timings["job"], finish_now, ("VirtualMachine", vm["id"]), vm)
    else:
        job = start_job(call, VM_CMD + rule.cmd, cloud.timings[rule.timing], finish, ("VirtualMachine", vm["id"]), vm)
    return {"jobid": job.id}


def force_reboot(call: Call, vm: dict[str, Any]) -> dict[str, Any]:
    """rebootVirtualMachine with ``forced=true`` (CloudStack 4.17+): one job stops the VM, then starts it
    (Stopping, Stopped, Starting, Running)."""
    cloud = call.cloud
    stop, start = cloud.timings["stop"], cloud.timings["start"]
    begin = max(time.monotonic(), vm.get("_free_at", 0.0))
    if begin <= time.monotonic():
        vm["state"] = "Stopping"

    def stopped() -> None:
        if vm["state"] in ("Running", "Stopping"):
            vm["state"] = "Starting"  # Stopped, and at once Starting again

    cloud.at(begin - time.monotonic() + stop, stopped)

    def finish() -> dict[str, Any]:
        if vm["state"] != "Starting":
            raise ApiError(INTERNAL, f"Unable to reboot vm {vm['name']} in state {vm['state']}", 4250)
        vm["state"] = "Running"
        return vm_result(cloud, vm)

    job = start_job(call, VM_CMD + "RebootVMCmd", stop + start, finish, ("VirtualMachine", vm["id"]), vm)
    return {"jobid": job.id}


def change_service(call: Call) -> dict[str, Any]:
    """changeServiceForVirtualMachine (synchronous): a stopped VM takes another service offering; a running one
    is refused (these VMs are not dynamically scalable), as is the offering it has."""
    cloud = call.cloud
    vm = call.find("vms", "id")
    offering = cloud.serviceofferings.get(call.need("serviceofferingid"))
    if offering is None:
        raise call.invalid("serviceofferingid", call.params["serviceofferingid"])
    if vm["state"] != "Stopped":
        raise param_error(
            f"Unable to upgrade virtual machine VM instance {{id: {vm['id']}}}  in state {vm['state']}; "
            "make sure the virtual machine is stopped"
        )
    if offering["id"] == vm["serviceofferingid"]:
        raise param_error(f"Not upgrading vm {vm['id']} since it already has the requested service offering")
    vm.update(
        serviceofferingid=offering["id"],
        serviceofferingname=offering["name"],
        cpunumber=offering["cpunumber"],
        cpuspeed=offering["cpuspeed"],
        memory=offering["memory"],
    )
    return vm_result(cloud, vm)


def update_virtual_machine(call: Call) -> dict[str, Any]:
    """updateVirtualMachine (synchronous): the display name and user data a user may change."""
    vm = call.find("vms", "id")
    if call.get("displayname"):
        vm["displayname"] = call.params["displayname"]
    if call.get("userdata") is not None:
        try:
            base64.b64decode(call.params["userdata"], validate=True)
        except ValueError:
            raise param_error("User data is not base64 encoded.") from None
        vm["userdata"] = call.params["userdata"]
    return vm_result(call.cloud, vm)


def expunge(cloud: Cloud, vm: dict[str, Any], delay: float) -> None:
    """Destroyed -> Expunging -> gone (with its root volume) after ``delay``."""

    def begin() -> None:
        if vm["state"] != "Destroyed":
            return
        vm["state"] = "Expunging"
        cloud.at(cloud.timings["expunge"], gone)

    def gone() -> None:
        vm["_gone"] = True
        for vol in cloud.tables["volumes"].values():
            if vol.get("virtualmachineid") == vm["id"] and vol.get("_root"):
                vol["_gone"] = True

    if delay <= 0:
        begin()
    else:
        cloud.at(delay, begin)


# --- commands: volumes and snapshots ---------------------------------------------------------------------------

VOLUME_CMD = "org.apache.cloudstack.api.command.user.volume."


def volume_result(cloud: Cloud, vol: dict[str, Any]) -> dict[str, Any]:
    return {"volume": cloud.render("volumes", vol)}


def create_volume(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    name = call.get("name") or f"vol-{new_id()[:8]}"
    owner = call.owner()
    snapshot = call.find("snapshots", "snapshotid") if call.get("snapshotid") else None
    if snapshot:
        zone = cloud.zones[snapshot["zoneid"]]
        size, offering = snapshot["_size"], None
    else:
        offering = cloud.diskofferings.get(call.need("diskofferingid"))
        if offering is None:
            raise call.invalid("diskofferingid", call.params["diskofferingid"])
        zone = cloud.zones.get(call.need("zoneid"))
        if zone is None:
            raise call.invalid("zoneid", call.params["zoneid"])
        size = call.integer("size")
        if offering["iscustomized"]:
            if not size or size < 1:
                raise param_error("This disk offering requires a custom size specified")
        elif size is not None:
            raise param_error("This disk offering does not allow custom size")
        else:
            size = offering["disksize"]
        size <<= 30
    cloud.check_limit("volumes", call.account)
    fields: dict[str, Any] = {
        "name": name,
        "type": "DATADISK",
        "zoneid": zone["id"],
        "zonename": zone["name"],
        "size": size,
        "state": "Allocated",
        "storagetype": "shared",
        "hypervisor": "None",
        "storage": "none",
        "destroyed": False,
        "isextractable": False,
    }
    if offering:
        fields.update(
            diskofferingid=offering["id"],
            diskofferingname=offering["name"],
            diskofferingdisplaytext=offering["displaytext"],
        )
    if snapshot:
        fields["snapshotid"] = snapshot["id"]
    vol = cloud.add("volumes", owner, **fields)
    job = start_job(
        call,
        VOLUME_CMD + "CreateVolumeCmd",
        cloud.timings["job"],
        lambda: volume_result(cloud, vol),
        ("Volume", vol["id"]),
    )
    return {"id": vol["id"], "jobid": job.id}


def attach_volume(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    vol = call.find("volumes", "id")
    vm = call.find("vms", "virtualmachineid")
    if vol.get("virtualmachineid"):
        raise param_error(f"Volume {vol['name']} is already attached to a VM")
    if vm["state"] not in ("Running", "Stopped"):
        raise param_error(
            f"Unable to attach volume, please specify a VM that does not have VM snapshots; VM state: {vm['state']}"
        )
    if vm["zoneid"] != vol["zoneid"]:
        raise param_error("Please specify a VM that is in the same zone as the volume.")
    used = {v.get("deviceid") for v in cloud.tables["volumes"].values() if v.get("virtualmachineid") == vm["id"]}
    device = call.integer("deviceid")
    if device is None:
        device = next(d for d in itertools.count(1) if d not in used and d != 3)
    elif device in used:
        raise param_error(f"deviceId {device} is used by a volume on this VM")
    vol["virtualmachineid"], vol["deviceid"], vol["state"] = vm["id"], device, "Ready"

    def finish() -> dict[str, Any]:
        vol["attached"] = now_text()
        return volume_result(cloud, vol)

    job = start_job(call, VOLUME_CMD + "AttachVolumeCmd", cloud.timings["job"], finish, ("Volume", vol["id"]))
    return {"jobid": job.id}


def detach_volume(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    vol = call.find("volumes", "id")
    if not vol.get("virtualmachineid"):
        raise param_error("Please specify a volume that is attached to a VM.")
    if vol.get("_root"):
        raise param_error("Please specify a data volume; root volumes cannot be detached here.")
    vol.pop("virtualmachineid")
    vol.pop("deviceid", None)
    vol.pop("attached", None)
    job = start_job(
        call,
        VOLUME_CMD + "DetachVolumeCmd",
        cloud.timings["job"],
        lambda: volume_result(cloud, vol),
        ("Volume", vol["id"]),
    )
    return {"jobid": job.id}


def resize_volume(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    vol = call.find("volumes", "id")
    size = call.integer("size")
    offering_id = call.get("diskofferingid")
    offering = None
    if offering_id:
        offering = cloud.diskofferings.get(offering_id)
        if offering is None:
            raise call.invalid("diskofferingid", offering_id)
        if not offering["iscustomized"]:
            size = offering["disksize"]
        elif not size:
            raise param_error("This disk offering requires a custom size specified")
    if not size:
        raise param_error("Unable to execute API command resizevolume due to missing parameter size")
    new = size << 30
    if new < vol["size"] and not truthy(call.get("shrinkok")):
        raise param_error(f"Going from existing size of {vol['size']} to size of {new} would shrink the volume.")

    was, vol["state"] = vol["state"], "Resizing"

    def finish() -> dict[str, Any]:
        vol["size"], vol["state"] = new, was
        if offering is not None:  # the volume moves to the offering it was resized with
            vol.update(
                diskofferingid=offering["id"],
                diskofferingname=offering["name"],
                diskofferingdisplaytext=offering["displaytext"],
            )
        return volume_result(cloud, vol)

    job = start_job(call, VOLUME_CMD + "ResizeVolumeCmd", cloud.timings["job"], finish, ("Volume", vol["id"]))
    return {"jobid": job.id}


def update_volume(call: Call) -> dict[str, Any]:
    """updateVolume as a user may call it: ``name`` and ``displayvolume`` (the rest are an administrator's)."""
    cloud = call.cloud
    vol = call.find("volumes", "id")
    name, display = call.get("name"), call.get("displayvolume")

    def finish() -> dict[str, Any]:
        if name:
            vol["name"] = name
        if display is not None:
            vol["displayvolume"] = truthy(display)
        return volume_result(cloud, vol)

    job = start_job(call, VOLUME_CMD + "UpdateVolumeCmd", cloud.timings["job"], finish, ("Volume", vol["id"]))
    return {"jobid": job.id}


def delete_volume(call: Call) -> dict[str, Any]:
    vol = call.find("volumes", "id")
    if vol.get("virtualmachineid"):
        raise param_error("Please specify a volume that is not attached to any VM.")
    vol["_gone"] = True
    return {"success": "true"}


def list_volumes(call: Call) -> dict[str, Any]:
    vm, kind = call.get("virtualmachineid"), call.get("type")
    return owned_list(
        call,
        "volumes",
        "volume",
        lambda v: (not vm or v.get("virtualmachineid") == vm) and (not kind or v["type"] == kind.upper()),
    )


def create_snapshot(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    vol = call.find("volumes", "volumeid")
    cloud.check_limit("snapshots", call.account)
    snap = cloud.add(
        "snapshots",
        vol["_owner"],
        name=call.get("name") or f"{vol['name']}_{datetime.now(UTC):%Y%m%d%H%M%S}",
        snapshottype="MANUAL",
        intervaltype="MANUAL",
        volumeid=vol["id"],
        volumename=vol["name"],
        volumetype=vol["type"],
        zoneid=vol["zoneid"],
        state="Creating",
        physicalsize=vol["size"],
        revertable=False,
        _size=vol["size"],
    )

    def finish() -> dict[str, Any]:
        snap["state"] = "BackedUp"
        return {"snapshot": cloud.render("snapshots", snap)}

    job = start_job(
        call,
        "org.apache.cloudstack.api.command.user.snapshot.CreateSnapshotCmd",
        cloud.timings["snapshot"],
        finish,
        ("Snapshot", snap["id"]),
    )
    return {"id": snap["id"], "jobid": job.id}


def list_snapshots(call: Call) -> dict[str, Any]:
    volume = call.get("volumeid")
    return owned_list(call, "snapshots", "snapshot", lambda s: not volume or s["volumeid"] == volume)


def delete_snapshot(call: Call) -> dict[str, Any]:
    snap = call.find("snapshots", "id")

    def finish() -> dict[str, Any]:
        snap["_gone"] = True
        return {"success": True}

    job = start_job(
        call,
        "org.apache.cloudstack.api.command.user.snapshot.DeleteSnapshotCmd",
        call.cloud.timings["job"],
        finish,
        ("Snapshot", snap["id"]),
    )
    return {"jobid": job.id}


# --- commands: public IPs and static NAT -----------------------------------------------------------------------

ADDRESS_CMD = "org.apache.cloudstack.api.command.user.address."


def associate_ip_address(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    owner = call.owner()
    if call.get("networkid"):
        net = call.find("networks", "networkid")
        zone = cloud.zones[net["zoneid"]]
    else:
        zone = cloud.zones.get(call.need("zoneid"))
        if zone is None:
            raise call.invalid("zoneid", call.params["zoneid"])
        net = next(
            n
            for n in cloud.tables["networks"].values()
            if n["_owner"].key() == owner.key() and n["zoneid"] == zone["id"]
        )
    cloud.check_limit("ips", call.account)
    try:
        address = next(cloud.public_pool)
    except StopIteration:
        raise ApiError(533, "Insufficient address capacity", 4310) from None
    ip = cloud.add(
        "ips",
        owner,
        ipaddress=address,
        allocated=now_text(),
        zoneid=zone["id"],
        zonename=zone["name"],
        issourcenat=False,
        isstaticnat=False,
        issystem=False,
        forvirtualnetwork=True,
        associatednetworkid=net["id"],
        associatednetworkname=net["name"],
        networkid="5e2d3a4b-0000-4000-8000-000000000002",
        vlanid="5e2d3a4b-0000-4000-8000-000000000003",
        vlanname="vlan://untagged",
        state="Allocating",
    )

    def finish() -> dict[str, Any]:
        ip["state"] = "Allocated"
        return {"ipaddress": cloud.render("ips", ip)}

    job = start_job(call, ADDRESS_CMD + "AssociateIPAddrCmd", cloud.timings["job"], finish, ("IpAddress", ip["id"]))
    return {"id": ip["id"], "jobid": job.id}


def _drop_nat(ip: dict[str, Any]) -> None:
    ip["isstaticnat"] = False
    for key in ("virtualmachineid", "virtualmachinename", "virtualmachinedisplayname", "vmipaddress"):
        ip.pop(key, None)


def disassociate_ip_address(call: Call) -> dict[str, Any]:
    ip = call.find("ips", "id")
    ip["state"] = "Releasing"

    def finish() -> dict[str, Any]:
        _drop_nat(ip)
        ip["_gone"] = True
        return {"success": True}

    job = start_job(
        call, ADDRESS_CMD + "DisassociateIPAddrCmd", call.cloud.timings["job"], finish, ("IpAddress", ip["id"])
    )
    return {"jobid": job.id}


def list_public_ip_addresses(call: Call) -> dict[str, Any]:
    rid, address, nat = call.get("id"), call.get("ipaddress"), call.get("isstaticnat")
    return owned_list(
        call,
        "ips",
        "publicipaddress",
        lambda i: (
            (not rid or i["id"] == rid)
            and (not address or i["ipaddress"] == address)
            and (nat is None or i["isstaticnat"] == truthy(nat))
        ),
    )


def enable_static_nat(call: Call) -> dict[str, Any]:
    ip = call.find("ips", "ipaddressid")
    vm = call.find("vms", "virtualmachineid")
    if ip.get("virtualmachineid") and ip["virtualmachineid"] != vm["id"]:
        raise ApiError(
            537, f"Failed to enable static nat for the ip address id={ip['id']} as it's already assigned", 4360
        )
    if any(i.get("virtualmachineid") == vm["id"] and i is not ip for i in call.cloud.tables["ips"].values()):
        raise ApiError(537, f"Failed to enable static nat: vm {vm['name']} already has a static nat ip", 4360)
    if vm["state"] in ("Destroyed", "Expunging", "Error"):
        raise param_error(f"Invalid vm state {vm['state']} for static nat")
    ip.update(
        isstaticnat=True,
        virtualmachineid=vm["id"],
        virtualmachinename=vm["name"],
        virtualmachinedisplayname=vm["displayname"],
        vmipaddress=vm["nic"][0]["ipaddress"] if vm["nic"] else None,
    )
    return {"success": "true"}


def disable_static_nat(call: Call) -> dict[str, Any]:
    ip = call.find("ips", "ipaddressid")
    if not ip["isstaticnat"]:
        raise param_error("Specified IP address id is not associated with any vm Id")

    def finish() -> dict[str, Any]:
        _drop_nat(ip)
        return {"success": True}

    job = start_job(
        call,
        "org.apache.cloudstack.api.command.user.nat.DisableStaticNatCmd",
        call.cloud.timings["job"],
        finish,
        ("IpAddress", ip["id"]),
    )
    return {"jobid": job.id}


def empty_rules(key: str) -> Callable[[Call], dict[str, Any]]:
    """Port forwarding and IP forwarding rules: none are ever made here (libcloud's list_nodes asks)."""
    return lambda call: call.listing("rules", key, [], rendered=True)


# --- commands: SSH key pairs -----------------------------------------------------------------------------------

KEY_TYPES = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-dss")


def fingerprint(public_key: str) -> str:
    """CloudStack's: the MD5 of the key blob, in colon-separated hex."""
    parts = public_key.split()
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise param_error("Public key is invalid")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise param_error("Public key is invalid") from None
    if not blob.startswith(len(parts[0]).to_bytes(4, "big") + parts[0].encode()):
        raise param_error("Public key is invalid")
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def _keypair_named(call: Call, owner: Owner, name: str) -> dict[str, Any] | None:
    return next(
        (k for k in call.cloud.tables["keypairs"].values() if k["name"] == name and k["_owner"].key() == owner.key()),
        None,
    )


def _new_keypair(call: Call, public_key: str) -> dict[str, Any]:
    name = call.need("name")
    owner = call.owner()
    if _keypair_named(call, owner, name):
        raise param_error(f"A key pair with name '{name}' already exists.")
    record = call.cloud.add("keypairs", owner, name=name, fingerprint=fingerprint(public_key), _public=public_key)
    del record["created"]
    return record


def create_ssh_key_pair(call: Call) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    record = _new_keypair(call, public)
    return {"keypair": {**call.cloud.render("keypairs", record), "privatekey": private}}


def register_ssh_key_pair(call: Call) -> dict[str, Any]:
    record = _new_keypair(call, call.need("publickey").strip())
    return {"keypair": call.cloud.render("keypairs", record)}


def list_ssh_key_pairs(call: Call) -> dict[str, Any]:
    name, print_ = call.get("name"), call.get("fingerprint")
    return owned_list(
        call,
        "keypairs",
        "sshkeypair",
        lambda k: (not name or k["name"] == name) and (not print_ or k["fingerprint"] == print_),
    )


def delete_ssh_key_pair(call: Call) -> dict[str, Any]:
    name = call.need("name")
    record = _keypair_named(call, call.owner(), name)
    if record is None:
        raise param_error(
            f"A key pair with name '{name}' does not exist for account {call.account.name} in specified domain id"
        )
    del call.cloud.tables["keypairs"][record["id"]]
    return {"success": "true"}


# --- commands: security groups ---------------------------------------------------------------------------------

SG_CMD = "org.apache.cloudstack.api.command.user.securitygroup."


def create_security_group(call: Call) -> dict[str, Any]:
    name = call.need("name")
    owner = call.owner()
    if name.lower() == "default" or any(
        g["name"] == name and g["_owner"].key() == owner.key() for g in call.cloud.tables["securitygroups"].values()
    ):
        raise param_error(f"Unable to create security group, a group with name {name} already exists.")
    group = call.cloud.add("securitygroups", owner, name=name, description=call.get("description") or "")
    group.update(ingressrule=[], egressrule=[])
    return {"securitygroup": call.cloud.render("securitygroups", group)}


def _group(call: Call, id_param: str = "securitygroupid", name_param: str = "securitygroupname") -> dict[str, Any]:
    if call.get(id_param):
        return call.find("securitygroups", id_param)
    name = call.get(name_param)
    if not name:
        raise param_error(f"Either {id_param} or {name_param} is required by the API")
    owner = call.owner()
    match = [
        g
        for g in call.cloud.tables["securitygroups"].values()
        if g["name"] == name and g["_owner"].key() == owner.key() and not g.get("_gone")
    ]
    if not match:
        raise param_error(f"Unable to find security group by name {name}")
    return match[0]


def list_security_groups(call: Call) -> dict[str, Any]:
    name, vm = call.get("securitygroupname"), call.get("virtualmachineid")
    for group in call.cloud.tables["securitygroups"].values():
        group.setdefault("ingressrule", [])
        group.setdefault("egressrule", [])
    return owned_list(
        call,
        "securitygroups",
        "securitygroup",
        lambda g: (
            (not name or g["name"] == name)
            and (not vm or g["id"] in call.cloud.tables["vms"].get(vm, {}).get("_groups", []))
        ),
    )


def delete_security_group(call: Call) -> dict[str, Any]:
    group = _group(call, "id", "name")
    if group["name"] == "default":
        raise param_error("The network default group cannot be removed")
    if any(not vm.get("_gone") for vm in (call.cloud.tables["vms"][i] for i in call.cloud.group_users(group))):
        raise in_use("Cannot delete group when it's in use by virtual machines")
    group["_gone"] = True
    return {"success": "true"}


PROTOCOLS = {"tcp", "udp", "icmp", "all"}


def authorize_rule(call: Call) -> dict[str, Any]:
    direction = "ingressrule" if call.command.lower().endswith("ingress") else "egressrule"
    group = _group(call)
    group.setdefault("ingressrule", [])
    group.setdefault("egressrule", [])
    protocol = (call.get("protocol") or "tcp").lower()
    if protocol not in PROTOCOLS and not protocol.isdigit():
        raise param_error(f"Invalid protocol {protocol}")
    base: dict[str, Any] = {"protocol": protocol}
    if protocol in ("tcp", "udp"):
        start, end = call.integer("startport"), call.integer("endport")
        if start is None:
            raise param_error("Invalid port range specified: startport is required for protocol tcp/udp")
        end = start if end is None else end
        if not (0 <= start <= end <= 65535):
            raise param_error(f"Invalid port range {start}-{end}")
        base.update(startport=start, endport=end)
    elif protocol == "icmp":
        base.update(icmptype=call.integer("icmptype", -1), icmpcode=call.integer("icmpcode", -1))
    rules = []
    for cidr in (call.get("cidrlist") or "").split(","):
        if cidr:
            try:
                ipaddress.ip_network(cidr.strip(), strict=False)
            except ValueError:
                raise param_error(f"Invalid cidr {cidr}") from None
            rules.append({**base, "cidr": cidr.strip()})
    pairs: dict[int, dict[str, str]] = {}
    for name, value in call.params.items():
        match = re.fullmatch(r"usersecuritygrouplist\[(\d+)\]\.(account|group)", name)
        if match:
            pairs.setdefault(int(match[1]), {})[match[2]] = value
    for pair in pairs.values():
        rules.append({**base, "securitygroupname": pair.get("group", ""), "account": pair.get("account", "")})
    if not rules:
        rules.append({**base, "cidr": "0.0.0.0/0"})
    existing = [{k: v for k, v in r.items() if k != "ruleid"} for r in group[direction]]
    added = []
    for rule in rules:
        if rule not in existing:
            record = {"ruleid": new_id(), **rule}
            group[direction].append(record)
            added.append(record)
    if not added:
        raise ApiError(537, "Failed to authorize security group rule(s): the rule already exists", 4360)
    cmd = "AuthorizeSecurityGroupIngressCmd" if direction == "ingressrule" else "AuthorizeSecurityGroupEgressCmd"
    job = start_job(
        call,
        SG_CMD + cmd,
        call.cloud.timings["job"],
        lambda: {"securitygroup": call.cloud.render("securitygroups", group)},
        ("SecurityGroup", group["id"]),
    )
    return {"jobid": job.id}


def revoke_rule(call: Call) -> dict[str, Any]:
    direction = "ingressrule" if call.command.lower().endswith("ingress") else "egressrule"
    rid = call.need("id")
    for group in call.cloud.tables["securitygroups"].values():
        for rule in group.get(direction, []):
            if rule["ruleid"] == rid:
                if group["_owner"].account is not call.account:
                    raise denied(f"Account {call.account.name} does not have permission to revoke rule {rid}")
                group[direction].remove(rule)
                cmd = "RevokeSecurityGroupIngressCmd" if direction == "ingressrule" else "RevokeSecurityGroupEgressCmd"
                job = start_job(
                    call,
                    SG_CMD + cmd,
                    call.cloud.timings["job"],
                    lambda: {"success": True},
                    ("SecurityGroup", group["id"]),
                )
                return {"jobid": job.id}
    raise call.invalid("id", rid)


# --- commands: tags --------------------------------------------------------------------------------------------


def _tagged(call: Call) -> tuple[str, list[dict[str, Any]]]:
    """createTags/deleteTags' resource type (as CloudStack spells it) and records; another account's (or the
    administrator's public templates) refused as TaggedResourceManagerImpl refuses them."""
    kind = call.need("resourcetype")
    table = RESOURCE_TYPES.get(kind.lower())
    if table is None:
        raise param_error(f"Invalid resource type {kind}")
    ids = [i for i in call.need("resourceids").split(",") if i]
    records = [call.find(table, "resourceids", i) for i in ids]
    for record in records:
        if "_owner" not in record:
            raise denied(f"Account '{call.account.name}' doesn't have permissions to create tags for resource")
    return type_name(kind.lower()), records


def create_tags(call: Call) -> dict[str, Any]:
    """Tags land when the job runs; an empty value (431) or a key the resource has (530) fails the job."""
    kind, records = _tagged(call)
    tags = call.tags_param()
    if not tags:
        raise param_error("Unable to execute API command createtags due to missing parameter tags")

    def finish() -> dict[str, Any]:
        for key, value in tags.items():
            if not value:
                raise param_error(f"Value for the key {key} is either null or empty")
            for record in records:
                if key.lower() in {k.lower() for k in record.get("_tags", {})}:
                    raise ApiError(INTERNAL, f"tag {key} already on {kind} with id {record['id']}", 4250)
        for record in records:
            record.setdefault("_tags", {}).update(tags)
        return {"success": True}

    job = start_job(call, "org.apache.cloudstack.api.command.user.tag.CreateTagsCmd", call.cloud.timings["job"], finish)
    return {"jobid": job.id}


def delete_tags(call: Call) -> dict[str, Any]:
    """Keys (and values, when given) match without case; none matching fails the job ("Failed to delete tags")."""
    _, records = _tagged(call)
    keys: dict[int, dict[str, str]] = {}
    for name, value in call.params.items():
        match = re.fullmatch(r"tags\[(\d+)\]\.(key|value)", name)
        if match:
            keys.setdefault(int(match[1]), {})[match[2]] = value

    def matches(key: str, value: str) -> bool:
        return not keys or any(
            w.get("key", "").lower() == key.lower() and (w.get("value") is None or w["value"].lower() == value.lower())
            for w in keys.values()
        )

    def finish() -> dict[str, Any]:
        doomed = [(r, k) for r in records for k, v in r.get("_tags", {}).items() if matches(k, v)]
        if not doomed:
            raise ApiError(INTERNAL, "Failed to delete tags", 4250)
        for record, key in doomed:
            del record["_tags"][key]
        return {"success": True}

    job = start_job(call, "org.apache.cloudstack.api.command.user.tag.DeleteTagsCmd", call.cloud.timings["job"], finish)
    return {"jobid": job.id}


def list_tags(call: Call) -> dict[str, Any]:
    kind, rid, key, value = (call.get(n) for n in ("resourcetype", "resourceid", "key", "value"))
    items = []
    for rkind, table in RESOURCE_TYPES.items():
        if kind and kind.lower() != rkind:
            continue
        for record in call.cloud.tables[table].values():
            if "_owner" not in record or not call.visible(record) or (rid and record["id"] != rid):
                continue
            for k, v in record.get("_tags", {}).items():
                if (not key or k == key) and (not value or v == value):
                    items.append(call.cloud.tag_view(record, rkind, k, v))
    return call.listing("tags", "tag", items, rendered=True)


# --- dispatch --------------------------------------------------------------------------------------------------

from peers.cloudstack import networks as guest_networks  # noqa: E402  (they use what is defined above)
from peers.cloudstack import templates  # noqa: E402

COMMANDS: dict[str, Callable[[Call], dict[str, Any]]] = {
    "listzones": list_zones,
    "listserviceofferings": list_service_offerings,
    "listdiskofferings": list_disk_offerings,
    "listprojects": list_projects,
    "listnetworks": list_networks,
    "deployvirtualmachine": deploy_virtual_machine,
    "listvirtualmachines": list_virtual_machines,
    "startvirtualmachine": vm_action,
    "stopvirtualmachine": vm_action,
    "rebootvirtualmachine": vm_action,
    "destroyvirtualmachine": vm_action,
    "changeserviceforvirtualmachine": change_service,
    "updatevirtualmachine": update_virtual_machine,
    "createvolume": create_volume,
    "attachvolume": attach_volume,
    "detachvolume": detach_volume,
    "resizevolume": resize_volume,
    "updatevolume": update_volume,
    "deletevolume": delete_volume,
    "listvolumes": list_volumes,
    "createsnapshot": create_snapshot,
    "listsnapshots": list_snapshots,
    "deletesnapshot": delete_snapshot,
    "associateipaddress": associate_ip_address,
    "disassociateipaddress": disassociate_ip_address,
    "listpublicipaddresses": list_public_ip_addresses,
    "enablestaticnat": enable_static_nat,
    "disablestaticnat": disable_static_nat,
    "listportforwardingrules": empty_rules("portforwardingrule"),
    "listipforwardingrules": empty_rules("ipforwardingrule"),
    "createsshkeypair": create_ssh_key_pair,
    "registersshkeypair": register_ssh_key_pair,
    "listsshkeypairs": list_ssh_key_pairs,
    "deletesshkeypair": delete_ssh_key_pair,
    "createsecuritygroup": create_security_group,
    "listsecuritygroups": list_security_groups,
    "deletesecuritygroup": delete_security_group,
    "authorizesecuritygroupingress": authorize_rule,
    "authorizesecuritygroupegress": authorize_rule,
    "revokesecuritygroupingress": revoke_rule,
    "revokesecuritygroupegress": revoke_rule,
    "createtags": create_tags,
    "deletetags": delete_tags,
    "listtags": list_tags,
    "queryasyncjobresult": query_async_job_result,
    **guest_networks.COMMANDS,
    **templates.COMMANDS,
}


def render_json(name: str, body: dict[str, Any]) -> bytes:
    return json.dumps({name: body}).encode()


def _xml(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        return f"<{tag}>" + "".join(_xml_items(value)) + f"</{tag}>"
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{tag}>{escape(str(value))}</{tag}>"


def _xml_items(body: dict[str, Any]) -> list[str]:
    out = []
    for key, value in body.items():
        if value is None:
            continue
        if isinstance(value, list):
            out.extend(_xml(key, item) for item in value)
        else:
            out.append(_xml(key, value))
    return out


def render_xml(name: str, body: dict[str, Any]) -> bytes:
    inner = "".join(_xml_items(body))
    return f'<?xml version="1.0" encoding="UTF-8"?><{name} cloud-stack-version="{VERSION}">{inner}</{name}>'.encode()


class Answer:
    """What a request gets: a status and a rendered body, or nothing at all (a dropped connection)."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        self.status, self.body, self.content_type = status, body, content_type


class Simulator:
    """Parses, authenticates and dispatches ``/client/api`` calls against one :class:`Cloud`."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.cloud = Cloud(config)
        #: lower-cased command -> how many calls of it ran (dropped ones did not): tests count what was sent
        self.calls: Counter[str] = Counter()

    def handle(self, params: dict[str, str]) -> Answer | None:
        as_json = params.get("response", "").lower() == "json"
        command = params.get("command", "")
        known = command.lower() in COMMANDS
        name = f"{command.lower()}response" if known else "errorresponse"

        def answer(status: int, body: dict[str, Any]) -> Answer:
            if as_json:
                return Answer(status, render_json(name, body), "application/json; charset=UTF-8")
            return Answer(status, render_xml(name, body), "text/xml; charset=UTF-8")

        def error(err: ApiError) -> Answer:
            body = {
                "uuidList": [],
                "errorcode": err.errorcode,
                "cserrorcode": err.cserrorcode,
                "errortext": err.errortext,
            }
            return answer(err.errorcode, body)

        if not command:
            return error(ApiError(400, "Invalid request, no command sent", 9999))
        account = self.authenticate(params)
        if account is None:
            return error(ApiError(401, UNAUTHORIZED_TEXT, 9999))
        if not known:
            return error(ApiError(432, "The given command does not exist or it is not available for user", 9999))
        with self.cloud.lock:
            fault = self.cloud.faults.pick(self.cloud.rng, command)
        if fault == "drop":
            return None
        if fault == "fail":
            return error(ApiError(INTERNAL, f"Internal error executing command {command}", 4250))
        if fault == "stall":
            time.sleep(self.cloud.faults.stall_seconds)
        lowered = {k.lower(): v for k, v in params.items()}
        call = Call(self.cloud, account, command, lowered)
        with self.cloud.lock:
            self.calls[command.lower()] += 1
            self.cloud.advance()
            try:
                result = COMMANDS[command.lower()](call)
            except ApiError as err:
                return error(err)
            except Exception as err:  # a simulator bug still answers as CloudStack does, never a dropped socket
                return error(ApiError(INTERNAL, f"Internal error executing command {command}: {err!r}", 4250))
        if fault == "lose":
            return None
        return answer(200, result)

    def authenticate(self, params: dict[str, str]) -> Account | None:
        """The account whose key signed this request, or None (CloudStack answers 401 for every failure)."""
        apikey = next((v for k, v in params.items() if k.lower() == "apikey"), None)
        signature = params.get("signature")
        account = self.cloud.accounts.get(apikey or "")
        if account is None or not signature:
            return None
        signed = {k: v for k, v in params.items() if k != "signature"}
        if not hmac.compare_digest(signature_of(signed, account.secretkey), signature):
            return None
        version = params.get("signatureVersion") or params.get("signatureversion")
        expires = params.get("expires")
        if version == "3":
            if not expires:
                return None
            try:
                deadline = datetime.strptime(expires, DATE_FORMAT)
            except ValueError:
                return None
            if deadline <= datetime.now(UTC):
                return None
        return account


class Handler(BaseHTTPRequestHandler):
    server_version = "CloudStackSimulator/1"
    protocol_version = "HTTP/1.1"
    simulator: Simulator

    def log_message(self, format: str, *args: Any) -> None:  # quiet; the test's log file gets errors only
        pass

    def _params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        query = urlsplit(self.path).query
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        body = self.body.decode(errors="replace")
        for source in (query, body if "form-urlencoded" in (self.headers.get("Content-Type") or "") else ""):
            for key, value in parse_qsl(source, keep_blank_values=True):
                params.setdefault(key, value)
        return params

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> None:
        path = urlsplit(self.path).path
        params = self._params()
        if path == "/client/api":
            answer = self.simulator.handle(params)
            if answer is None:
                self.close_connection = True
                return
            self._send(answer.status, answer.body, answer.content_type)
        elif path.startswith("/_simulator/"):
            self._control(path.removeprefix("/_simulator/"))
        else:
            self._send(404, b"Not Found", "text/plain")

    def _control(self, what: str) -> None:
        cloud = self.simulator.cloud
        try:
            data = json.loads(self.body or b"{}") if self.command == "POST" else {}
        except ValueError:
            return self._send(400, b"bad json", "text/plain")
        with cloud.lock:
            if what == "faults" and self.command == "POST":
                try:
                    cloud.faults = Faults(**data)
                except TypeError as error:
                    return self._send(400, str(error).encode(), "text/plain")
                cloud.rng = random.Random(cloud.faults.seed)
            elif what == "timings" and self.command == "POST":
                cloud.timings.update({k: float(v) for k, v in data.items()})
            elif what == "calls":
                return self._send(200, json.dumps(self.simulator.calls).encode(), "application/json")
            elif what != "ping":
                return self._send(404, b"Not Found", "text/plain")
        self._send(200, b"{}", "application/json")

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()


def serve(port: int, config: dict[str, Any]) -> None:
    handler = type("BoundHandler", (Handler,), {"simulator": Simulator(config)})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", help="JSON file: accounts, zones, templates, offerings, timings, faults")
    args = parser.parse_args()
    config = dict(DEFAULT_CONFIG)
    if args.config:
        with open(args.config) as handle:
            config.update(json.load(handle))
    serve(args.port, config)


if __name__ == "__main__":
    main()
