"""The hub: frontends call a Translator with canonical requests; it finds the caller's backend
account, swaps gateway ids for native ones, calls the backend (retried), records jobs and
idempotency tokens, caches listings, and returns resources carrying gateway ids only.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from translator import model
from translator.backend import AccountConfig, Backend, BackendServices, Capability, load_driver
from translator.calls import BackendCaller, RetryPolicy
from translator.codec import dumps, from_dict, loads, to_dict
from translator.errors import CloudgateError, Conflict, InvalidParameter, NotFound, Unsupported
from translator.identity import Tenant, authorize
from translator.ids import gateway_id
from translator.jobs import JobLog
from translator.metrics import CACHE_LOOKUPS
from translator.model import RESOURCE_TYPES, Principal, Resource, Zone, in_transition
from translator.publish import publish
from translator.store import Store

#: A quoted word of a backend's error message: where backends name resources.
QUOTED = re.compile(r"'([^'\s]{1,128})'")

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class TranslatorSettings:
    cache_ttl: float = 5.0
    transitional_cache_ttl: float = 1.0
    idempotency_ttl: int = 86400
    job_ttl: int = 86400
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True)
class Operation:
    """How one mutating backend operation is guarded and what it makes stale."""

    capability: Capability
    invalidates: tuple[str, ...]


#: Backend method -> capability it needs and the listings it invalidates. One table, no if-chain.
OPERATIONS: dict[str, Operation] = {
    "create_machines": Operation(Capability.MACHINES, ("machine", "volume", "subnet", "security_group")),
    "act_on_machine": Operation(Capability.MACHINES, ("machine", "volume", "address")),
    "update_machine": Operation(Capability.MACHINE_RESIZE, ("machine",)),
    "create_image": Operation(Capability.IMAGE_CREATE, ("image", "snapshot")),
    "delete_image": Operation(Capability.IMAGES, ("image",)),
    "create_volume": Operation(Capability.VOLUMES, ("volume",)),
    "delete_volume": Operation(Capability.VOLUMES, ("volume",)),
    "attach_volume": Operation(Capability.VOLUMES, ("volume", "machine")),
    "detach_volume": Operation(Capability.VOLUMES, ("volume", "machine")),
    "create_snapshot": Operation(Capability.SNAPSHOTS, ("snapshot",)),
    "delete_snapshot": Operation(Capability.SNAPSHOTS, ("snapshot",)),
    "create_network": Operation(Capability.NETWORK_CREATE, ("network", "security_group")),
    "delete_network": Operation(Capability.NETWORK_CREATE, ("network", "security_group")),
    "create_subnet": Operation(Capability.NETWORK_CREATE, ("subnet",)),
    "delete_subnet": Operation(Capability.NETWORK_CREATE, ("subnet",)),
    "allocate_address": Operation(Capability.ADDRESSES, ("address",)),
    "associate_address": Operation(Capability.ADDRESSES, ("address", "machine")),
    "disassociate_address": Operation(Capability.ADDRESSES, ("address", "machine")),
    "release_address": Operation(Capability.ADDRESSES, ("address",)),
    "create_key_pair": Operation(Capability.KEY_PAIR_CREATE, ("key_pair",)),
    "import_key_pair": Operation(Capability.KEY_PAIRS, ("key_pair",)),
    "delete_key_pair": Operation(Capability.KEY_PAIRS, ("key_pair",)),
    "create_security_group": Operation(Capability.SECURITY_GROUPS, ("security_group",)),
    "delete_security_group": Operation(Capability.SECURITY_GROUPS, ("security_group",)),
    "authorize_rules": Operation(Capability.SECURITY_GROUPS, ("security_group",)),
    "revoke_rules": Operation(Capability.SECURITY_GROUPS, ("security_group",)),
    # Tags of any kind: every listing that may carry them goes stale (tag changes are rare).
    "set_tags": Operation(Capability.NATIVE_TAGS, tuple(RESOURCE_TYPES)),
    "remove_tags": Operation(Capability.NATIVE_TAGS, tuple(RESOURCE_TYPES)),
}

#: Kind -> (backend listing method, capability needed to list it).
LISTINGS: dict[str, tuple[str, Capability]] = {
    "machine": ("list_machines", Capability.MACHINES),
    "image": ("list_images", Capability.IMAGES),
    "flavor": ("list_flavors", Capability.MACHINES),
    "volume": ("list_volumes", Capability.VOLUMES),
    "snapshot": ("list_snapshots", Capability.SNAPSHOTS),
    "network": ("list_networks", Capability.NETWORKS),
    "subnet": ("list_subnets", Capability.NETWORKS),
    "address": ("list_addresses", Capability.ADDRESSES),
    "key_pair": ("list_key_pairs", Capability.KEY_PAIRS),
    "security_group": ("list_security_groups", Capability.SECURITY_GROUPS),
}

# One pool per process for fanning a listing out over a tenant's accounts.
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="cg-fanout")


class Translator:
    """One per worker; thread-safe (backends must be too)."""

    def __init__(
        self,
        settings: TranslatorSettings,
        accounts: Mapping[str, AccountConfig],
        tenants: Mapping[str, Tenant],
        store: Store,
        services: BackendServices,
    ) -> None:
        self.settings = settings
        self.accounts = dict(accounts)
        self.tenants = dict(tenants)
        self.store = store
        self.services = services
        self.caller = BackendCaller(settings.retry)
        self.jobs = JobLog(store, settings.job_ttl)
        self._backends: dict[str, Backend] = {}

    # -- accounts ----------------------------------------------------------------------------
    def backend(self, account: AccountConfig) -> Backend:
        """The backend instance of an account, built on first use (drivers load lazily)."""
        found = self._backends.get(account.key)
        if found is None:
            found = load_driver(account.driver)(account, self.services)
            found = self._backends.setdefault(account.key, found)
        return found

    def regions(self, principal: Principal) -> list[AccountConfig]:
        tenant = self.tenants.get(principal.tenant)
        return [self.accounts[k] for k in tenant.accounts] if tenant else []

    def account(self, principal: Principal, region: str | None = None) -> AccountConfig:
        """The caller's account in ``region`` (its first one when None)."""
        accounts = self.regions(principal)
        for acc in accounts:
            if region is None or acc.region == region:
                return acc
        raise NotFound(f"The region '{region}' does not exist or is not enabled.", kind="region")

    def tenant_of(self, principal: Principal) -> Tenant:
        return self.tenants[principal.tenant]

    def capabilities(self, account: AccountConfig) -> frozenset[Capability]:
        return self.backend(account).capabilities

    def zones(self, principal: Principal, region: str | None = None) -> list[Zone]:
        account = self.account(principal, region)
        backend = self.backend(account)
        return self.caller.call(account.driver, "list_zones", backend.list_zones)

    def limits(self, principal: Principal, region: str | None = None) -> model.Limits:
        """The caller's quotas in ``region``, as its cloud reports them (asked each time: read rarely)."""
        authorize(principal, "read")
        account = self.account(principal, region)
        backend = self.backend(account)
        return self.caller.call(account.driver, "limits", backend.limits)

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()

    # -- reads -------------------------------------------------------------------------------
    def list(self, principal: Principal, kind: str, region: str | None = None) -> list[Resource]:
        """Every resource of ``kind`` the caller sees, in one region or across all of them."""
        authorize(principal, "read")
        accounts = [self.account(principal, region)] if region else self.regions(principal)
        if len(accounts) == 1:
            return self._list_account(accounts[0], kind)
        results = _POOL.map(lambda acc: self._list_account(acc, kind), accounts)
        return [r for batch in results for r in batch]

    def get(self, principal: Principal, kind: str, gid: str) -> Resource:
        return self.get_many(principal, kind, [gid])[0]

    def get_many(self, principal: Principal, kind: str, gids: Iterable[str]) -> list[Resource]:
        """The named resources in order; NotFound names the first that does not exist for the caller."""
        authorize(principal, "read")
        gids = list(gids)
        located = self._locate(principal, kind, gids)
        by_account: dict[str, dict[str, Resource]] = {}
        out = []
        for gid, (account, _native) in zip(gids, located, strict=True):
            if account.key not in by_account:
                by_account[account.key] = {r.id: r for r in self._list_account(account, kind)}
            found = by_account[account.key].get(gid)
            if found is None:
                raise _not_found(kind, gid)
            out.append(found)
        return out

    def kinds_of(self, gids: list[str]) -> list[str | None]:
        """The kind of each gateway id ever published (None for one never seen)."""
        return [row[1] if row else None for row in self.store.resolve(gids)]

    def expand_short(self, shorts: list[str]) -> list[str | None]:
        """Gateway ids for public short forms (EC2 ``i-<17 hex>`` without the prefix)."""
        return self.store.resolve_short(shorts)

    def _list_account(self, account: AccountConfig, kind: str) -> list[Resource]:
        method, capability = LISTINGS[kind]
        backend = self.backend(account)
        if capability not in backend.capabilities:
            return []
        cls = RESOURCE_TYPES[kind]
        generation, payload, tags = self.store.cache_read(account.key, kind)
        if payload is not None:
            CACHE_LOOKUPS.labels(kind, "hit").inc()
            records = [from_dict(cls, d) for d in loads(payload)]
        else:
            CACHE_LOOKUPS.labels(kind, "miss").inc()
            records = self.caller.call(account.driver, method, getattr(backend, method))
            self._publish_all(account, records)
            ttl = self.settings.cache_ttl
            if any(in_transition(r) for r in records):
                ttl = min(ttl, self.settings.transitional_cache_ttl)
            self.store.cache_write(account.key, kind, generation, dumps([to_dict(r) for r in records]), ttl)
        if tags:
            for r in records:
                extra = tags.get(r.id)
                if extra:
                    r.tags = {**r.tags, **extra}
        return records

    def _publish_all(self, account: AccountConfig, records: Iterable[Any]) -> None:
        entries: list[tuple[str, str, str, str]] = []
        for record in records:
            publish(account, record, entries)
        self.store.remember(entries)

    def _locate(self, principal: Principal, kind: str, gids: list[str]) -> list[tuple[AccountConfig, str]]:
        """Account and native id of each gateway id; NotFound for unknown or other tenants' ids."""
        mine = set(self.tenants[principal.tenant].accounts) if principal.tenant in self.tenants else set()
        out = []
        for gid, row in zip(gids, self.store.resolve(gids), strict=True):
            if row is None or row[1] != kind or row[0] not in mine or row[0] not in self.accounts:
                raise _not_found(kind, gid)
            out.append((self.accounts[row[0]], row[2]))
        return out

    def _native_refs(self, principal: Principal, account: AccountConfig, spec: Any) -> Any:
        """A copy of a request dataclass with its gateway-id references (``REFS``) made native."""
        changes: dict[str, Any] = {}
        for name, kind in type(spec).REFS.items():
            value = getattr(spec, name)
            if not value:
                continue
            gids = list(value) if isinstance(value, tuple | list) else [value]
            natives = []
            for acc, native in self._locate(principal, kind, gids):
                if acc.key != account.key:
                    raise InvalidParameter(
                        f"The {kind.replace('_', ' ')} '{gids[len(natives)]}' is in another region.",
                        kind=kind,
                    )
                natives.append(native)
            changes[name] = tuple(natives) if isinstance(value, tuple | list) else natives[0]
        return model.replace(spec, **changes) if changes else spec

    # -- mutations ---------------------------------------------------------------------------
    def _mutate(
        self,
        principal: Principal,
        account: AccountConfig,
        op: str,
        target_kind: str,
        target_ids: list[str],
        *args: Any,
    ) -> Any:
        """Authorize, check capability, record a job, call (retried), invalidate, publish."""
        authorize(principal, "write")
        spec = OPERATIONS[op]
        backend = self.backend(account)
        if spec.capability not in backend.capabilities:
            raise Unsupported(
                f"The {account.driver} backend of region {account.region} does not support this operation.",
                reason=str(spec.capability),
            )
        job = self.jobs.start(principal, op, target_kind, target_ids)
        try:
            result = self.caller.call(account.driver, op, getattr(backend, op), *args)
        except Exception as exc:
            if isinstance(exc, CloudgateError):
                self._gateway_ids_in(account, exc)
            self.jobs.finish(job, error=getattr(exc, "message", type(exc).__name__))
            self.store.invalidate(account.key, spec.invalidates)
            raise
        self.store.invalidate(account.key, spec.invalidates)
        published = _resources_in(result)
        self._publish_all(account, published)
        self.jobs.finish(job, target_ids=[r.id for r in published] or target_ids)
        return result

    def _gateway_ids_in(self, account: AccountConfig, exc: CloudgateError) -> None:
        """A backend's error names resources by their native ids; callers know them by gateway ids. Each
        quoted word that is a native id the gateway knows in this account, of any kind, is replaced."""
        words = set(QUOTED.findall(exc.message))
        if not words:
            return
        candidates = [(word, gateway_id(account.key, kind, word)) for word in words for kind in RESOURCE_TYPES]
        try:
            rows = self.store.resolve([gid for _, gid in candidates])
        except Exception:  # an error path must not fail on a lookup: the backend's own words then
            return
        for (word, gid), row in zip(candidates, rows, strict=True):
            if row is not None and row[0] == account.key and row[2] == word:
                exc.message = exc.message.replace(f"'{word}'", f"'{gid}'")
        exc.args = (exc.message,)

    def _on(self, principal: Principal, kind: str, gid: str, op: str, *args: Any) -> Any:
        """Run ``op`` on an existing resource: locate it, then mutate with its native id first."""
        ((account, native),) = self._locate(principal, kind, [gid])
        return self._mutate(principal, account, op, kind, [gid], native, *args)

    def _on_with(
        self,
        principal: Principal,
        kind: str,
        gid: str,
        other_kind: str,
        other: str | None,
        op: str,
        *args: Any,
    ) -> Any:
        """Like ``_on`` for operations naming a second resource (volume + machine, address + machine)."""
        ((account, native),) = self._locate(principal, kind, [gid])
        other_native = None
        if other:
            ((other_acc, other_native),) = self._locate(principal, other_kind, [other])
            if other_acc.key != account.key:
                raise InvalidParameter(f"The {other_kind} '{other}' is in another region.", kind=other_kind)
        return self._mutate(principal, account, op, kind, [gid], native, other_native, *args)

    # machines ----------------------------------------------------------------------------------
    def create_machines(
        self, principal: Principal, spec: model.MachineSpec, region: str | None = None, client_token: str = ""
    ) -> list[model.Machine]:
        """Launch ``spec.count`` machines; a repeated ``client_token`` returns the first launch."""
        account = self.account(principal, region)
        if not client_token:
            return self._launch(principal, account, spec)
        fingerprint = hashlib.sha256(dumps([account.key, _spec_dict(spec)])).hexdigest()
        return self._idempotent(
            principal, client_token, fingerprint, "machine", lambda: self._launch(principal, account, spec)
        )

    def _launch(self, principal: Principal, account: AccountConfig, spec: model.MachineSpec) -> list[model.Machine]:
        native_spec = self._native_refs(principal, account, spec)
        machines = self._mutate(principal, account, "create_machines", "machine", [], native_spec)
        # A backend with NATIVE_TAGS launches with the spec's tags itself; for the others they live in Redis.
        if spec.tags and Capability.NATIVE_TAGS not in self.capabilities(account):
            for m in machines:
                self.store.update_tags(account.key, "machine", m.id, dict(spec.tags), {})
                m.tags = {**m.tags, **dict(spec.tags)}
        return machines

    def _idempotent(
        self, principal: Principal, token: str, fingerprint: str, kind: str, run: Callable[[], list[Any]]
    ) -> list[Any]:
        ttl = self.settings.idempotency_ttl
        deadline = time.monotonic() + 30
        while True:
            existing = self.store.idempotency_claim(principal.tenant, token, fingerprint, ttl)
            if existing is None:
                break
            if existing.get("fp") != fingerprint:
                raise Conflict(
                    f"Arguments on this idempotent request are inconsistent with arguments used in previous "
                    f"request(s) with client token '{token}'.",
                    kind=kind,
                    reason="idempotency",
                )
            if existing.get("state") == "done":
                result = existing["result"]
                found = self.get_many(principal, kind, result["ids"])
                return found
            if time.monotonic() > deadline:
                raise Conflict(f"A request with client token '{token}' is still in progress.", reason="in_progress")
            time.sleep(0.05)
        try:
            created = run()
        except BaseException:
            self.store.idempotency_release(principal.tenant, token)
            raise
        self.store.idempotency_complete(principal.tenant, token, fingerprint, {"ids": [r.id for r in created]}, ttl)
        return created

    def act_on_machine(
        self, principal: Principal, gid: str, action: model.MachineAction, force: bool = False
    ) -> model.Machine:
        return self._on(principal, "machine", gid, "act_on_machine", action, force)

    def update_machine(self, principal: Principal, gid: str, update: model.MachineUpdate) -> model.Machine:
        ((account, native),) = self._locate(principal, "machine", [gid])
        native_update = self._native_refs(principal, account, update)
        return self._mutate(principal, account, "update_machine", "machine", [gid], native, native_update)

    def console_output(self, principal: Principal, gid: str) -> str:
        authorize(principal, "read")
        ((account, native),) = self._locate(principal, "machine", [gid])
        backend = self.backend(account)
        if Capability.CONSOLE_OUTPUT not in backend.capabilities:
            raise Unsupported("This backend does not provide console output.", reason="console_output")
        return self.caller.call(account.driver, "console_output", backend.console_output, native)

    def machine_user_data(self, principal: Principal, gid: str) -> str | None:
        """User data is read one machine at a time: listings of real clouds do not carry it."""
        authorize(principal, "read")
        ((account, native),) = self._locate(principal, "machine", [gid])
        backend = self.backend(account)
        return self.caller.call(account.driver, "machine_user_data", backend.machine_user_data, native)

    # images --------------------------------------------------------------------------------------
    def create_image(self, principal: Principal, spec: model.ImageSpec) -> model.Image:
        ((account, _),) = self._locate(principal, "machine", [spec.machine_id])
        native_spec = self._native_refs(principal, account, spec)
        return self._mutate(principal, account, "create_image", "image", [], native_spec)

    def delete_image(self, principal: Principal, gid: str) -> None:
        self._on(principal, "image", gid, "delete_image")
        self._forget_tags(principal, "image", gid)

    # volumes and snapshots -------------------------------------------------------------------------
    def create_volume(self, principal: Principal, spec: model.VolumeSpec, region: str | None = None) -> model.Volume:
        account = self.account(principal, region)
        native_spec = self._native_refs(principal, account, spec)
        return self._mutate(principal, account, "create_volume", "volume", [], native_spec)

    def delete_volume(self, principal: Principal, gid: str) -> None:
        self._on(principal, "volume", gid, "delete_volume")
        self._forget_tags(principal, "volume", gid)

    def attach_volume(self, principal: Principal, gid: str, machine_id: str, device: str) -> model.Volume:
        return self._on_with(principal, "volume", gid, "machine", machine_id, "attach_volume", device)

    def detach_volume(
        self, principal: Principal, gid: str, machine_id: str | None = None, force: bool = False
    ) -> model.Volume:
        return self._on_with(principal, "volume", gid, "machine", machine_id, "detach_volume", force)

    def create_snapshot(self, principal: Principal, volume_id: str, description: str = "") -> model.Snapshot:
        ((account, native),) = self._locate(principal, "volume", [volume_id])
        return self._mutate(principal, account, "create_snapshot", "snapshot", [], native, description)

    def delete_snapshot(self, principal: Principal, gid: str) -> None:
        self._on(principal, "snapshot", gid, "delete_snapshot")
        self._forget_tags(principal, "snapshot", gid)

    # networks ------------------------------------------------------------------------------------
    def create_network(self, principal: Principal, spec: model.NetworkSpec, region: str | None = None) -> model.Network:
        account = self.account(principal, region)
        return self._mutate(principal, account, "create_network", "network", [], spec)

    def delete_network(self, principal: Principal, gid: str) -> None:
        self._on(principal, "network", gid, "delete_network")
        self._forget_tags(principal, "network", gid)

    def create_subnet(self, principal: Principal, spec: model.SubnetSpec) -> model.Subnet:
        ((account, _),) = self._locate(principal, "network", [spec.network_id])
        native_spec = self._native_refs(principal, account, spec)
        return self._mutate(principal, account, "create_subnet", "subnet", [], native_spec)

    def delete_subnet(self, principal: Principal, gid: str) -> None:
        self._on(principal, "subnet", gid, "delete_subnet")
        self._forget_tags(principal, "subnet", gid)

    # addresses -----------------------------------------------------------------------------------
    def allocate_address(self, principal: Principal, region: str | None = None) -> model.Address:
        account = self.account(principal, region)
        return self._mutate(principal, account, "allocate_address", "address", [])

    def associate_address(self, principal: Principal, gid: str, machine_id: str) -> model.Address:
        return self._on_with(principal, "address", gid, "machine", machine_id, "associate_address")

    def disassociate_address(self, principal: Principal, gid: str) -> model.Address:
        return self._on(principal, "address", gid, "disassociate_address")

    def release_address(self, principal: Principal, gid: str) -> None:
        self._on(principal, "address", gid, "release_address")
        self._forget_tags(principal, "address", gid)

    # key pairs -----------------------------------------------------------------------------------
    def create_key_pair(
        self, principal: Principal, name: str, key_type: str = "rsa", region: str | None = None
    ) -> model.KeyPairMaterial:
        account = self.account(principal, region)
        return self._mutate(principal, account, "create_key_pair", "key_pair", [], name, key_type)

    def import_key_pair(
        self, principal: Principal, name: str, public_key: str, region: str | None = None
    ) -> model.KeyPair:
        account = self.account(principal, region)
        return self._mutate(principal, account, "import_key_pair", "key_pair", [], name, public_key)

    def delete_key_pair(self, principal: Principal, gid: str) -> None:
        self._on(principal, "key_pair", gid, "delete_key_pair")
        self._forget_tags(principal, "key_pair", gid)

    # security groups -----------------------------------------------------------------------------
    def create_security_group(
        self, principal: Principal, spec: model.SecurityGroupSpec, region: str | None = None
    ) -> model.SecurityGroup:
        account = self.account(principal, region)
        native_spec = self._native_refs(principal, account, spec)
        return self._mutate(principal, account, "create_security_group", "security_group", [], native_spec)

    def delete_security_group(self, principal: Principal, gid: str) -> None:
        self._on(principal, "security_group", gid, "delete_security_group")
        self._forget_tags(principal, "security_group", gid)

    def authorize_rules(self, principal: Principal, gid: str, rules: list[model.Rule]) -> model.SecurityGroup:
        ((account, native),) = self._locate(principal, "security_group", [gid])
        native_rules = [self._native_rule(principal, account, r) for r in rules]
        return self._mutate(principal, account, "authorize_rules", "security_group", [gid], native, native_rules)

    def revoke_rules(self, principal: Principal, gid: str, rules: list[model.Rule]) -> model.SecurityGroup:
        ((account, native),) = self._locate(principal, "security_group", [gid])
        native_rules = [self._native_rule(principal, account, r) for r in rules]
        return self._mutate(principal, account, "revoke_rules", "security_group", [gid], native, native_rules)

    def _native_rule(self, principal: Principal, account: AccountConfig, rule: model.Rule) -> model.Rule:
        if not rule.group_id:
            return rule
        ((acc, native),) = self._locate(principal, "security_group", [rule.group_id])
        if acc.key != account.key:
            raise InvalidParameter(f"The security group '{rule.group_id}' is in another region.")
        return model.replace(rule, group_id=native)

    # tags ----------------------------------------------------------------------------------------
    def update_tags(
        self,
        principal: Principal,
        kind: str,
        gids: list[str],
        put: dict[str, str],
        remove: dict[str, str | None] | None = None,
    ) -> None:
        """Set and remove tags on resources the caller owns: in the cloud with NATIVE_TAGS, else in Redis."""
        authorize(principal, "write")
        located = self._locate(principal, kind, gids)
        for gid, (account, native) in zip(gids, located, strict=True):
            if Capability.NATIVE_TAGS in self.capabilities(account):
                self._native_tags(principal, account, kind, gid, native, put, remove or {})
            else:
                self.store.update_tags(account.key, kind, gid, put, remove or {})

    def _native_tags(
        self,
        principal: Principal,
        account: AccountConfig,
        kind: str,
        gid: str,
        native: str,
        put: dict[str, str],
        remove: dict[str, str | None],
    ) -> None:
        drop = []
        if remove:  # a key given with a value goes only while it still has that value
            current = self.get(principal, kind, gid).tags
            drop = [k for k, v in remove.items() if k in current and (v is None or current[k] == v)]
        if put:
            self._mutate(principal, account, "set_tags", kind, [gid], kind, native, put)
        if drop:
            self._mutate(principal, account, "remove_tags", kind, [gid], kind, native, drop)

    def _forget_tags(self, principal: Principal, kind: str, gid: str) -> None:
        ((account, _),) = self._locate(principal, kind, [gid])
        self.store.drop_tags(account.key, kind, [gid])

    # jobs ----------------------------------------------------------------------------------------
    def list_jobs(self, principal: Principal) -> list[model.Job]:
        authorize(principal, "read")
        return self.jobs.list(principal.tenant)

    def get_job(self, principal: Principal, job_id: str) -> model.Job:
        authorize(principal, "read")
        job = self.jobs.get(principal.tenant, job_id)
        if job is None:
            raise NotFound(f"The job '{job_id}' does not exist.", kind="job")
        return job


def _not_found(kind: str, gid: str) -> NotFound:
    return NotFound(f"The {kind.replace('_', ' ')} ID '{gid}' does not exist", kind=kind)


def _resources_in(result: Any) -> list[Resource]:
    if isinstance(result, Resource):
        return [result]
    if isinstance(result, model.KeyPairMaterial):
        return [result.key_pair]
    if isinstance(result, list):
        return [r for r in result if isinstance(r, Resource)]
    return []


def _spec_dict(spec: Any) -> dict[str, Any]:
    return {f.name: getattr(spec, f.name) for f in fields(spec)}


__all__ = ["OPERATIONS", "Translator", "TranslatorSettings", "gateway_id"]
