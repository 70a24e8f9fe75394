"""Mutations: authorize, check the backend's capability, record a job, call (retried), invalidate
the listings it makes stale, publish what it returns, and name resources by gateway id in its errors.

Every mutation is a job whose work is data (operation, account, arguments with native ids), so any
worker can run it. The translator runs it in the request thread (``run_inline``): EC2 answers with the
resource the backend returned, at the cost of two Redis round trips, with no queue hop or polling; the
job's lease means a worker that dies mid-call leaves the job to another. ``submit`` queues it instead,
for protocols that answer with the job (CIMI's 202).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from translator.accounts import Accounts
from translator.arguments import decode, encode
from translator.backend import AccountConfig, Capability
from translator.calls import BackendCaller
from translator.errors import BackendUnavailable, CloudgateError, InvalidParameter, NotFound, Unsupported
from translator.identity import authorize
from translator.ids import gateway_id
from translator.job_runner import JobRunner
from translator.jobs import JobOutcome, JobSpec
from translator.listings import Listings
from translator.model import RESOURCE_TYPES, ActionMethod, Job, KeyPairMaterial, MachineAction, Principal, Resource
from translator.store import Store

#: A quoted word of a backend's error message: where backends name resources.
QUOTED = re.compile(r"'([^'\s]{1,128})'")


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
    "attach_interface": Operation(Capability.MACHINE_INTERFACES, ("machine", "subnet")),
    "detach_interface": Operation(Capability.MACHINE_INTERFACES, ("machine", "subnet", "address")),
    "create_image": Operation(Capability.IMAGE_CREATE, ("image", "snapshot")),
    "delete_image": Operation(Capability.IMAGES, ("image",)),
    "update_image": Operation(Capability.IMAGE_UPDATE, ("image",)),
    "create_volume": Operation(Capability.VOLUMES, ("volume",)),
    "delete_volume": Operation(Capability.VOLUMES, ("volume",)),
    "update_volume": Operation(Capability.VOLUME_UPDATE, ("volume",)),
    "attach_volume": Operation(Capability.VOLUMES, ("volume", "machine")),
    "detach_volume": Operation(Capability.VOLUMES, ("volume", "machine")),
    "create_snapshot": Operation(Capability.SNAPSHOTS, ("snapshot",)),
    "delete_snapshot": Operation(Capability.SNAPSHOTS, ("snapshot",)),
    "create_network": Operation(Capability.NETWORK_CREATE, ("network", "security_group")),
    "delete_network": Operation(Capability.NETWORK_CREATE, ("network", "security_group")),
    "act_on_network": Operation(Capability.NETWORK_UP_DOWN, ("network", "subnet", "machine")),
    "update_network": Operation(Capability.NETWORK_UPDATE, ("network",)),
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
    "update_security_group": Operation(Capability.SECURITY_GROUP_UPDATE, ("security_group",)),
    "authorize_rules": Operation(Capability.SECURITY_GROUPS, ("security_group",)),
    "revoke_rules": Operation(Capability.SECURITY_GROUPS, ("security_group",)),
    # Tags of any kind: every listing that may carry them goes stale (tag changes are rare).
    "set_tags": Operation(Capability.NATIVE_TAGS, tuple(RESOURCE_TYPES)),
    "remove_tags": Operation(Capability.NATIVE_TAGS, tuple(RESOURCE_TYPES)),
}

#: Operations that make a resource: sent again after the cloud may have got them, they would make a second one,
#: unless their spec carries an ``idempotency_key`` the backend hands to the cloud (see ``idempotency``).
CREATES = frozenset(op for op in OPERATIONS if op.startswith(("create_", "import_", "allocate_"))) | {
    "attach_interface"  # makes an interface (an ENI, a port) as it attaches it
}


#: (machine action, method) -> the capability it needs besides act_on_machine's (None: that one only). A pair
#: missing here is refused as an invalid parameter: there is no hard start, and no graceful way to do otherwise.
MACHINE_ACTIONS: dict[tuple[MachineAction, ActionMethod], Capability | None] = {
    (MachineAction.START, ActionMethod.GRACEFUL): None,
    (MachineAction.STOP, ActionMethod.GRACEFUL): None,
    (MachineAction.STOP, ActionMethod.HARD): Capability.STOP_HARD,
    (MachineAction.REBOOT, ActionMethod.GRACEFUL): None,
    (MachineAction.REBOOT, ActionMethod.HARD): Capability.REBOOT_HARD,
    (MachineAction.SUSPEND, ActionMethod.GRACEFUL): Capability.MACHINE_SUSPEND,
    (MachineAction.RESUME, ActionMethod.GRACEFUL): Capability.MACHINE_SUSPEND,
    (MachineAction.PAUSE, ActionMethod.GRACEFUL): Capability.MACHINE_PAUSE,
    (MachineAction.UNPAUSE, ActionMethod.GRACEFUL): Capability.MACHINE_PAUSE,
    (MachineAction.TERMINATE, ActionMethod.GRACEFUL): None,
}


class Mutator:
    """Runs the operations of ``OPERATIONS`` against a caller's account, each as a job."""

    def __init__(
        self, accounts: Accounts, listings: Listings, store: Store, caller: BackendCaller, runner: JobRunner
    ) -> None:
        self.accounts = accounts
        self.listings = listings
        self.store = store
        self.caller = caller
        self.runner = runner
        for op in OPERATIONS:
            runner.register(op, self.run_job)

    def mutate(
        self,
        principal: Principal,
        account: AccountConfig,
        op: str,
        target_kind: str,
        target_ids: list[str],
        *args: Any,
        needs: Capability | None = None,
    ) -> Any:
        """Authorize, check capability (the operation's, and ``needs`` for what these arguments ask besides), then
        run the operation as a job in this thread; its result."""
        spec = self._spec(principal, account, op, target_kind, target_ids, args, needs)
        # PERF: the inline run uses the arguments as given; only a worker taking the job over decodes them.
        _, result = self.runner.run_inline(principal.tenant, spec, lambda job: self._call(account, op, args))
        return result

    def submit(
        self,
        principal: Principal,
        account: AccountConfig,
        op: str,
        target_kind: str,
        target_ids: list[str],
        *args: Any,
        needs: Capability | None = None,
    ) -> Job:
        """Authorize, check capability and queue the operation; the job, at once (any worker runs it)."""
        spec = self._spec(principal, account, op, target_kind, target_ids, args, needs)
        return self.runner.jobs.submit(principal.tenant, spec)

    def run_job(self, job: Job) -> JobOutcome:
        """The handler of every operation: the work as the job's record holds it."""
        account = self.accounts.accounts.get(job.arguments.get("account", ""))
        if account is None or account.tenant != job.tenant:
            raise NotFound("The region of this job is no longer configured.", kind="region")
        args = tuple(decode(job.arguments["args"]))
        if job.attempts > 1 and not _resendable(job.operation, args):
            # Its first runner died after the call may have reached the cloud: running it again could make a
            # second resource, which nothing could tell apart from the first (no idempotency key).
            raise BackendUnavailable(
                "The operation's worker stopped while it ran and it may have been carried out; it is not repeated "
                "without an idempotency key. Look for what it made before asking again.",
                reason="outcome_unknown",
            )
        return self._call(account, job.operation, args)

    def _spec(
        self,
        principal: Principal,
        account: AccountConfig,
        op: str,
        target_kind: str,
        target_ids: list[str],
        args: tuple[Any, ...],
        needs: Capability | None = None,
    ) -> JobSpec:
        authorize(principal, "write")
        capabilities = self.accounts.backend(account).capabilities
        for capability in (OPERATIONS[op].capability, needs):
            if capability is not None and capability not in capabilities:
                raise Unsupported(
                    f"The {account.driver} backend of region {account.region} does not support this operation.",
                    reason=str(capability),
                )
        return job_spec(account.key, principal.user, op, target_kind, target_ids, args)

    def _call(self, account: AccountConfig, op: str, args: tuple[Any, ...]) -> JobOutcome:
        """Call the backend (retried), invalidate, publish; the resources it returned are the affected ones."""
        spec = OPERATIONS[op]
        backend = self.accounts.backend(account)
        try:
            resend = _resendable(op, args)
            result = self.caller.call(account, op, getattr(backend, op), *args, resend=resend)
        except Exception as exc:
            if isinstance(exc, CloudgateError):
                self._gateway_ids_in(account, exc)
            self.store.invalidate(account.key, spec.invalidates)
            raise
        published = _resources_in(result)
        # PERF: ids published and listings invalidated in the round trip that records the job's end
        writes = self.listings.publish_writes(account, published, spec.invalidates)
        return JobOutcome(affected_ids=tuple(r.id for r in published), value=result, writes=writes)

    def on(self, principal: Principal, kind: str, gid: str, op: str, *args: Any) -> Any:
        """Run ``op`` on an existing resource: locate it, then mutate with its native id first."""
        ((account, native),) = self.accounts.locate(principal, kind, [gid])
        return self.mutate(principal, account, op, kind, [gid], native, *args)

    def on_with(
        self,
        principal: Principal,
        kind: str,
        gid: str,
        other_kind: str,
        other: str | None,
        op: str,
        *args: Any,
    ) -> Any:
        """Like ``on`` for operations naming a second resource (volume + machine, address + machine)."""
        ((account, native),) = self.accounts.locate(principal, kind, [gid])
        other_native = None
        if other:
            ((other_acc, other_native),) = self.accounts.locate(principal, other_kind, [other])
            if other_acc.key != account.key:
                raise InvalidParameter(f"The {other_kind} '{other}' is in another region.", kind=other_kind)
        return self.mutate(principal, account, op, kind, [gid], native, other_native, *args)

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


def job_spec(
    account_key: str, user: str, op: str, target_kind: str, target_ids: list[str], args: tuple[Any, ...]
) -> JobSpec:
    """The job of one backend operation on an account, its arguments (native ids) as data."""
    arguments = {"account": account_key, "user": user, "args": encode(list(args))}
    return JobSpec(op, target_kind, tuple(target_ids), arguments)


def _resendable(op: str, args: tuple[Any, ...]) -> bool:
    """Whether sending ``op`` again is safe: anything but a create, or a create its cloud knows by its key."""
    return op not in CREATES or any(getattr(a, "idempotency_key", "") for a in args)


def _resources_in(result: Any) -> list[Resource]:
    if isinstance(result, Resource):
        return [result]
    if isinstance(result, KeyPairMaterial):
        return [result.key_pair]
    if isinstance(result, list):
        return [r for r in result if isinstance(r, Resource)]
    return []
