"""The hub: frontends call a Translator with canonical requests; it finds the caller's backend
account, swaps gateway ids for native ones, calls the backend (retried), records jobs and
idempotency tokens, caches listings, and returns resources carrying gateway ids only.

This module is the facade frontends see: one method per canonical operation, each a few lines over
the parts that do the work (``accounts`` routing, ``listings`` reads, ``mutations``, ``idempotency``,
``tags``, ``jobs``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from translator import model
from translator.accounts import Accounts
from translator.backend import AccountConfig, Backend, BackendServices, Capability
from translator.calls import BackendCaller, RetryPolicy
from translator.documents import DocumentStore, Page
from translator.errors import InvalidParameter, NotFound, Unsupported
from translator.follow import OPERATION as FOLLOW
from translator.follow import Follower, Goal, Step
from translator.idempotency import Idempotency
from translator.identity import Tenant, authorize
from translator.ids import gateway_id
from translator.job_runner import JobRunner
from translator.jobs import JobSettings, JobStore
from translator.listings import LISTINGS, CacheTimes, Listings, Match, MissingIds, ResourcePage, Where
from translator.model import Principal, Resource, Zone
from translator.mutations import MACHINE_ACTIONS, OPERATIONS, Mutator
from translator.publish import publish_part
from translator.read_cache import ReadCache
from translator.store import Store
from translator.tags import Tags

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TranslatorSettings:
    cache_ttl: float = 5.0
    transitional_cache_ttl: float = 1.0
    idempotency_ttl: int = 86400
    #: Seconds a pending client token stays claimed without a heartbeat (a dead worker's lapses this soon).
    idempotency_lease: float = 5.0
    job_ttl: int = 86400
    #: seconds a worker holds a running job without renewing it before another worker takes it over
    job_lease: float = 15.0
    #: a job running longer fails; below gunicorn's worker timeout
    job_run_bound: float = 100.0
    #: the longest a caller waits for a job (``wait_job``)
    job_wait_bound: float = 25.0
    #: threads per worker process running queued jobs
    job_threads: int = 4
    #: Seconds a published resource may be missing from its listings before its ids and tags are forgotten.
    prune_grace: float = 60.0
    #: megabytes of answers a worker keeps for reads whose index versions have not changed (0: none)
    read_cache_mb: int = 64
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def job_settings(self) -> JobSettings:
        return JobSettings(
            ttl=self.job_ttl,
            lease=self.job_lease,
            heartbeat=self.job_lease / 3,
            run_bound=self.job_run_bound,
            wait_bound=self.job_wait_bound,
            threads=self.job_threads,
        )


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
        self.store = store
        self.routing = Accounts(accounts, tenants, store, services)
        self.caller = BackendCaller(settings.retry, store.redis, checks=self._check_of)
        self.accounts = self.routing.accounts
        self.tenants = self.routing.tenants
        self.jobs = JobStore(store.redis, settings.job_settings(), store.durability)
        self.runner = JobRunner(self.jobs)
        self.listings = Listings(
            self.routing,
            store,
            self.caller,
            CacheTimes(settings.cache_ttl, settings.transitional_cache_ttl, settings.prune_grace),
        )
        self.mutator = Mutator(self.routing, self.listings, store, self.caller, self.runner)
        self.idempotency = Idempotency(store, settings.idempotency_ttl, settings.idempotency_lease)
        self.tags = Tags(self.routing, self.listings, self.mutator, store)
        self.routing.discover = self._discover
        #: what only the gateway holds (CIMI templates and systems, OCCI user mixins), per tenant
        self.documents = DocumentStore(store.redis)
        #: answers of reads, reused while their index versions hold and their backend reads return the same
        self.read_cache = ReadCache(store.index, settings.read_cache_mb << 20, refetch=self.listings.reread)
        self.follower = Follower(self, self.jobs)
        self.runner.register(FOLLOW, self.follower.run)

    def _discover(self, principal: Principal, kind: str) -> None:
        """Publish the caller's ``kind`` (an id met only as a reference becomes usable); see ``Accounts.find``."""
        if kind in LISTINGS:
            self.listings.list(principal, kind)

    # -- accounts ----------------------------------------------------------------------------
    def backend(self, account: AccountConfig) -> Backend:
        return self.routing.backend(account)

    def _check_of(self, account: AccountConfig | str) -> Callable[[], object] | None:
        """An account's probe of its cloud (a half-open breaker's probe); none for a bare driver name."""
        return self.routing.backend(account).check if isinstance(account, AccountConfig) else None

    def regions(self, principal: Principal) -> list[AccountConfig]:
        return self.routing.regions(principal)

    def account(self, principal: Principal, region: str | None = None) -> AccountConfig:
        return self.routing.account(principal, region)

    def tenant_of(self, principal: Principal) -> Tenant:
        return self.tenants[principal.tenant]

    def capabilities(self, account: AccountConfig) -> frozenset[Capability]:
        return self.routing.capabilities(account)

    def zones(self, principal: Principal, region: str | None = None) -> list[Zone]:
        account = self.account(principal, region)
        backend = self.backend(account)
        return self.caller.call(account, "list_zones", backend.list_zones)

    def limits(self, principal: Principal, region: str | None = None) -> model.Limits:
        """The caller's quotas in ``region``, as its cloud reports them (asked each time: read rarely)."""
        authorize(principal, "read")
        account = self.account(principal, region)
        backend = self.backend(account)
        return self.caller.call(account, "limits", backend.limits)

    def start_jobs(self) -> None:
        """Start this worker's job runner (after gunicorn forks: threads do not survive a fork)."""
        self.runner.start()

    def close(self) -> None:
        self.runner.stop()
        self.routing.close()
        self.read_cache.close()

    # -- reads -------------------------------------------------------------------------------
    def page(
        self,
        principal: Principal,
        kind: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        ids: Iterable[str] | None = None,
        where: Where | None = None,
        match: Match | None = None,
        region: str | None = None,
    ) -> ResourcePage[Resource]:
        """One page of ``kind`` in creation-time-then-id order, and the cursor of the next (see ``Listings.page``).

        ``ids`` restricts it to those gateway ids (``MissingIds``, a NotFound, names every one the caller cannot
        see); ``match`` holds canonical filters, ``where`` the frontend's own, both applied as the page fills.
        """
        authorize(principal, "read")
        return self.listings.page(
            principal, kind, cursor=cursor, limit=limit, ids=ids, where=where, match=match, region=region
        )

    def list(self, principal: Principal, kind: str, region: str | None = None) -> list[Resource]:
        """Every resource of ``kind`` the caller sees, in one region or across all of them (those reachable)."""
        authorize(principal, "read")
        return self.listings.list(principal, kind, region)

    def get(self, principal: Principal, kind: str, gid: str) -> Resource:
        return self.get_many(principal, kind, [gid])[0]

    def get_many(self, principal: Principal, kind: str, gids: Iterable[str]) -> list[Resource]:
        """The named resources in order, read by id where the listing is not cached; ``MissingIds`` names those
        that do not exist for the caller."""
        authorize(principal, "read")
        return self.listings.get_many(principal, kind, gids)

    def smallest_flavor(
        self, principal: Principal, vcpus: int, memory_mb: int, region: str | None = None
    ) -> model.Flavor:
        """The smallest flavor that fits (fewest vCPUs, then least memory, then name); NotFound when none does.
        For requests that size a machine rather than name a flavor (CIMI, OCCI)."""
        authorize(principal, "read")
        return self.listings.smallest_flavor(principal, vcpus, memory_mb, region)

    def region_of(self, principal: Principal, kind: str, gid: str) -> str:
        """The region (backend account) a resource lives in: where what refers to it must be made."""
        authorize(principal, "read")
        ((account, _),) = self.routing.locate(principal, kind, [gid])
        return account.region

    def kinds_of(self, gids: list[str]) -> list[str | None]:
        """The kind of each gateway id ever published (None for one never seen)."""
        return [row[1] if row else None for row in self.store.resolve(gids)]

    def expand_short(self, shorts: list[str]) -> list[str | None]:
        """Gateway ids for public short forms (EC2 ``i-<17 hex>`` without the prefix)."""
        return self.store.resolve_short(shorts)

    # machines ----------------------------------------------------------------------------------
    def create_machines(
        self, principal: Principal, spec: model.MachineSpec, region: str | None = None
    ) -> list[model.Machine]:
        """Launch ``spec.count`` machines; a repeated ``spec.idempotency_key`` returns the first launch."""
        authorize(principal, "write")
        account = self.account(principal, region)
        return self.idempotency.run(
            account.key,
            "machine",
            spec,
            # the backend gets the derived key, and the caller's own token to keep beside it (``client_token``)
            lambda keyed: self._launch(principal, account, replace(keyed, client_token=spec.idempotency_key)),
            lambda ids: self.get_many(principal, "machine", ids),
            # the launch is its job unless Redis-kept tags are written after it (``_launch``)
            ends_with_job=not spec.tags or self.routing.tags_natively(account, "machine"),
        )

    def _launch(self, principal: Principal, account: AccountConfig, spec: model.MachineSpec) -> list[model.Machine]:
        native_spec = self.routing.native_refs(principal, account, spec)
        machines = self.mutator.mutate(principal, account, "create_machines", "machine", [], native_spec)
        # A backend with NATIVE_TAGS launches with the spec's tags itself; for the others they live in Redis.
        self.tags.launched_with(account, "machine", machines, dict(spec.tags))
        return machines

    def act_on_machine(
        self,
        principal: Principal,
        gid: str,
        action: model.MachineAction | str,
        method: model.ActionMethod | str = model.ActionMethod.GRACEFUL,
    ) -> model.Machine:
        """Start, stop, reboot... a machine, gracefully or (stop, reboot) hard, where its backend can."""
        try:
            action, method = model.MachineAction(action), model.ActionMethod(method)
        except ValueError:
            raise InvalidParameter(f"Unknown machine action '{action}' or method '{method}'.", kind="machine") from None
        if (action, method) not in MACHINE_ACTIONS:
            raise InvalidParameter(f"A machine cannot {action} {method}.", kind="machine", reason="method")
        ((account, native),) = self.routing.locate(principal, "machine", [gid])
        needs = MACHINE_ACTIONS[(action, method)]
        return self.mutator.mutate(
            principal, account, "act_on_machine", "machine", [gid], native, action, method, needs=needs
        )

    def update_machine(self, principal: Principal, gid: str, update: model.MachineUpdate) -> model.Machine:
        ((account, native),) = self.routing.locate(principal, "machine", [gid])
        native_update = self.routing.native_refs(principal, account, update)
        return self.mutator.mutate(principal, account, "update_machine", "machine", [gid], native, native_update)

    def attach_interface(self, principal: Principal, gid: str, spec: model.InterfaceSpec) -> model.NetworkInterface:
        """Add an interface to a machine, on a subnet or on a network; the new interface, with gateway ids."""
        if not (spec.network_id or spec.subnet_id):
            raise InvalidParameter("A network interface needs a network or a subnet.", kind="network_interface")
        ((account, native),) = self.routing.locate(principal, "machine", [gid])
        native_spec = self.routing.native_refs(principal, account, spec)
        made = self.mutator.mutate(principal, account, "attach_interface", "machine", [gid], native, native_spec)
        return publish_part(account, made)

    def detach_interface(self, principal: Principal, gid: str, interface_id: str) -> None:
        """Remove one of a machine's interfaces, named by its gateway id (as the machine lists it)."""
        authorize(principal, "write")
        machine = self.get(principal, "machine", gid)
        found = next((i for i in getattr(machine, "interfaces", ()) if i.id == interface_id), None)
        if found is None:
            raise NotFound(
                f"The network interface '{interface_id}' is not attached to machine '{gid}'.", kind="network_interface"
            )
        ((account, native),) = self.routing.locate(principal, "machine", [gid])
        self.mutator.mutate(principal, account, "detach_interface", "machine", [gid], native, found.native_id)

    def console_output(self, principal: Principal, gid: str) -> str:
        authorize(principal, "read")
        ((account, native),) = self.routing.locate(principal, "machine", [gid])
        backend = self.routing.backend(account)
        if Capability.CONSOLE_OUTPUT not in backend.capabilities:
            raise Unsupported("This backend does not provide console output.", reason="console_output")
        return self.caller.call(account, "console_output", backend.console_output, native)

    def machine_user_data(self, principal: Principal, gid: str) -> str | None:
        """User data is read one machine at a time: listings of real clouds do not carry it."""
        authorize(principal, "read")
        ((account, native),) = self.routing.locate(principal, "machine", [gid])
        backend = self.routing.backend(account)
        return self.caller.call(account, "machine_user_data", backend.machine_user_data, native)

    # images --------------------------------------------------------------------------------------
    def create_image(self, principal: Principal, spec: model.ImageSpec) -> model.Image:
        ((account, _),) = self.routing.locate(principal, "machine", [spec.machine_id])
        native_spec = self.routing.native_refs(principal, account, spec)
        return self.mutator.mutate(principal, account, "create_image", "image", [], native_spec)

    def update_image(self, principal: Principal, gid: str, update: model.ImageUpdate) -> model.Image:
        """Rename or describe an image of the caller's."""
        return self.mutator.on(principal, "image", gid, "update_image", update)

    def delete_image(self, principal: Principal, gid: str) -> None:
        self.mutator.on(principal, "image", gid, "delete_image")
        self.tags.forget(principal, "image", gid)

    # volumes and snapshots -------------------------------------------------------------------------
    def create_volume(self, principal: Principal, spec: model.VolumeSpec, region: str | None = None) -> model.Volume:
        """A new volume; a repeated ``spec.idempotency_key`` returns the first one."""
        authorize(principal, "write")
        account = self.account(principal, region)

        def create(keyed: model.VolumeSpec) -> list[model.Volume]:
            native_spec = self.routing.native_refs(principal, account, keyed)
            return [self.mutator.mutate(principal, account, "create_volume", "volume", [], native_spec)]

        (volume,) = self.idempotency.run(
            account.key, "volume", spec, create, lambda ids: self.get_many(principal, "volume", ids)
        )
        return volume

    def update_volume(self, principal: Principal, gid: str, update: model.VolumeUpdate) -> model.Volume:
        """Rename, describe or grow a volume (a size needs VOLUME_RESIZE besides VOLUME_UPDATE)."""
        if update.size_gb is not None and update.size_gb < 1:
            raise InvalidParameter(f"The size {update.size_gb} GiB is not a volume size.", kind="volume", reason="size")
        needs = Capability.VOLUME_RESIZE if update.size_gb is not None else None
        ((account, native),) = self.routing.locate(principal, "volume", [gid])
        return self.mutator.mutate(principal, account, "update_volume", "volume", [gid], native, update, needs=needs)

    def delete_volume(self, principal: Principal, gid: str) -> None:
        self.mutator.on(principal, "volume", gid, "delete_volume")
        self.tags.forget(principal, "volume", gid)

    def attach_volume(self, principal: Principal, gid: str, machine_id: str, device: str | None = None) -> model.Volume:
        """Attach a volume as ``device``, or as the device the backend picks (None) and reports in the attachment."""
        return self.mutator.on_with(principal, "volume", gid, "machine", machine_id, "attach_volume", device)

    def detach_volume(
        self, principal: Principal, gid: str, machine_id: str | None = None, force: bool = False
    ) -> model.Volume:
        return self.mutator.on_with(principal, "volume", gid, "machine", machine_id, "detach_volume", force)

    def create_snapshot(self, principal: Principal, volume_id: str, description: str = "") -> model.Snapshot:
        ((account, native),) = self.routing.locate(principal, "volume", [volume_id])
        return self.mutator.mutate(principal, account, "create_snapshot", "snapshot", [], native, description)

    def delete_snapshot(self, principal: Principal, gid: str) -> None:
        self.mutator.on(principal, "snapshot", gid, "delete_snapshot")
        self.tags.forget(principal, "snapshot", gid)

    # networks ------------------------------------------------------------------------------------
    def create_network(self, principal: Principal, spec: model.NetworkSpec, region: str | None = None) -> model.Network:
        account = self.account(principal, region)
        return self.mutator.mutate(principal, account, "create_network", "network", [], spec)

    def delete_network(self, principal: Principal, gid: str) -> None:
        self.mutator.on(principal, "network", gid, "delete_network")
        self.tags.forget(principal, "network", gid)

    def update_network(self, principal: Principal, gid: str, update: model.NetworkUpdate) -> model.Network:
        """Rename or describe a network."""
        return self.mutator.on(principal, "network", gid, "update_network", update)

    def act_on_network(self, principal: Principal, gid: str, action: model.NetworkAction | str) -> model.Network:
        """Take a network down or bring it up again, where its cloud can."""
        try:
            action = model.NetworkAction(action)
        except ValueError:
            raise InvalidParameter(f"Unknown network action '{action}'.", kind="network", reason="action") from None
        return self.mutator.on(principal, "network", gid, "act_on_network", action)

    def create_subnet(self, principal: Principal, spec: model.SubnetSpec) -> model.Subnet:
        ((account, _),) = self.routing.locate(principal, "network", [spec.network_id])
        native_spec = self.routing.native_refs(principal, account, spec)
        return self.mutator.mutate(principal, account, "create_subnet", "subnet", [], native_spec)

    def delete_subnet(self, principal: Principal, gid: str) -> None:
        self.mutator.on(principal, "subnet", gid, "delete_subnet")
        self.tags.forget(principal, "subnet", gid)

    # addresses -----------------------------------------------------------------------------------
    def allocate_address(self, principal: Principal, region: str | None = None) -> model.Address:
        account = self.account(principal, region)
        return self.mutator.mutate(principal, account, "allocate_address", "address", [])

    def associate_address(self, principal: Principal, gid: str, machine_id: str) -> model.Address:
        return self.mutator.on_with(principal, "address", gid, "machine", machine_id, "associate_address")

    def disassociate_address(self, principal: Principal, gid: str) -> model.Address:
        return self.mutator.on(principal, "address", gid, "disassociate_address")

    def release_address(self, principal: Principal, gid: str) -> None:
        self.mutator.on(principal, "address", gid, "release_address")
        self.tags.forget(principal, "address", gid)

    # key pairs -----------------------------------------------------------------------------------
    def create_key_pair(
        self, principal: Principal, name: str, key_type: str = "rsa", region: str | None = None
    ) -> model.KeyPairMaterial:
        account = self.account(principal, region)
        return self.mutator.mutate(principal, account, "create_key_pair", "key_pair", [], name, key_type)

    def import_key_pair(
        self, principal: Principal, name: str, public_key: str, region: str | None = None
    ) -> model.KeyPair:
        account = self.account(principal, region)
        return self.mutator.mutate(principal, account, "import_key_pair", "key_pair", [], name, public_key)

    def delete_key_pair(self, principal: Principal, gid: str) -> None:
        self.mutator.on(principal, "key_pair", gid, "delete_key_pair")
        self.tags.forget(principal, "key_pair", gid)

    # security groups -----------------------------------------------------------------------------
    def create_security_group(
        self, principal: Principal, spec: model.SecurityGroupSpec, region: str | None = None
    ) -> model.SecurityGroup:
        account = self.account(principal, region)
        native_spec = self.routing.native_refs(principal, account, spec)
        return self.mutator.mutate(principal, account, "create_security_group", "security_group", [], native_spec)

    def update_security_group(
        self, principal: Principal, gid: str, update: model.SecurityGroupUpdate
    ) -> model.SecurityGroup:
        """Describe, or (where the cloud allows) rename, a security group."""
        return self.mutator.on(principal, "security_group", gid, "update_security_group", update)

    def delete_security_group(self, principal: Principal, gid: str) -> None:
        self.mutator.on(principal, "security_group", gid, "delete_security_group")
        self.tags.forget(principal, "security_group", gid)

    def authorize_rules(self, principal: Principal, gid: str, rules: list[model.Rule]) -> model.SecurityGroup:
        ((account, native),) = self.routing.locate(principal, "security_group", [gid])
        native_rules = [self.routing.native_refs(principal, account, r) for r in rules]
        return self.mutator.mutate(principal, account, "authorize_rules", "security_group", [gid], native, native_rules)

    def revoke_rules(self, principal: Principal, gid: str, rules: list[model.Rule]) -> model.SecurityGroup:
        ((account, native),) = self.routing.locate(principal, "security_group", [gid])
        native_rules = [self.routing.native_refs(principal, account, r) for r in rules]
        return self.mutator.mutate(principal, account, "revoke_rules", "security_group", [gid], native, native_rules)

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
        self.tags.update(principal, kind, gids, put, remove)

    # jobs ----------------------------------------------------------------------------------------
    def list_jobs(self, principal: Principal, cursor: str | None = None, limit: int = 100) -> Page[model.Job]:
        """The caller's tenant's jobs, newest first, a page after ``cursor``."""
        authorize(principal, "read")
        return self.jobs.list(principal.tenant, cursor, limit)

    def get_job(self, principal: Principal, job_id: str) -> model.Job:
        authorize(principal, "read")
        job = self.jobs.get(principal.tenant, job_id)
        if job is None:
            raise NotFound(f"The job '{job_id}' does not exist.", kind="job")
        return job

    def follow(
        self,
        principal: Principal,
        action: str,
        goal: Goal,
        call: Callable[[], T],
        targets: Sequence[str] = (),
    ) -> tuple[model.Job, T]:
        """Run ``call`` (a mutation of this facade) now, under a job that then follows ``goal`` on any worker:
        for protocols answering with a job (CIMI's 202). The job and what ``call`` returned."""
        return self.follower.follow(principal, action, goal, call, targets)

    def wait_job(self, principal: Principal, job_id: str, timeout: float) -> model.Job:
        """The job once it has ended, or as it is after ``timeout`` (capped by ``job_wait_bound``)."""
        authorize(principal, "read")
        job = self.jobs.wait(principal.tenant, job_id, timeout)
        if job is None:
            raise NotFound(f"The job '{job_id}' does not exist.", kind="job")
        return job


__all__ = [
    "OPERATIONS",
    "Goal",
    "Match",
    "MissingIds",
    "Page",
    "ResourcePage",
    "Step",
    "Translator",
    "TranslatorSettings",
    "Where",
    "gateway_id",
]
