"""Mutations: authorize, check the backend's capability, record a job, call (retried), invalidate
the listings it makes stale, publish what it returns, and name resources by gateway id in its errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from translator.accounts import Accounts
from translator.backend import AccountConfig, Capability
from translator.calls import BackendCaller
from translator.errors import CloudgateError, InvalidParameter, Unsupported
from translator.identity import authorize
from translator.ids import gateway_id
from translator.jobs import JobLog
from translator.listings import Listings
from translator.model import RESOURCE_TYPES, ActionMethod, KeyPairMaterial, MachineAction, Principal, Resource
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
    """Runs the operations of ``OPERATIONS`` against a caller's account."""

    def __init__(
        self, accounts: Accounts, listings: Listings, store: Store, caller: BackendCaller, jobs: JobLog
    ) -> None:
        self.accounts = accounts
        self.listings = listings
        self.store = store
        self.caller = caller
        self.jobs = jobs

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
        """Authorize, check capability (the operation's, and ``needs`` for what these arguments ask besides),
        record a job, call (retried), invalidate, publish."""
        authorize(principal, "write")
        spec = OPERATIONS[op]
        backend = self.accounts.backend(account)
        for capability in (spec.capability, needs):
            if capability is not None and capability not in backend.capabilities:
                raise Unsupported(
                    f"The {account.driver} backend of region {account.region} does not support this operation.",
                    reason=str(capability),
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
        self.listings.publish_all(account, published)
        self.jobs.finish(job, target_ids=[r.id for r in published] or target_ids)
        return result

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


def _resources_in(result: Any) -> list[Resource]:
    if isinstance(result, Resource):
        return [result]
    if isinstance(result, KeyPairMaterial):
        return [result.key_pair]
    if isinstance(result, list):
        return [r for r in result if isinstance(r, Resource)]
    return []
