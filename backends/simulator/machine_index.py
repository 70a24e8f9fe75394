"""What a launch, and what a network, subnet or security group's deletion, asks of an account's machines, without
reading them all: how many are live, which addresses each subnet has given out, which machines are on a network or
in a security group.

PERF: a launch checked the quota and picked free addresses by decoding every machine record of the account:
51 ms a launch at 1,000 machines, 182 ms at 4,000 (a subnet listing, which counts each subnet's free addresses,
190 ms at 4,000). Indexes beside the records answer them, in one slot with them:

    cg:sim:{<account>}:index:live               zset: machine id -> when it becomes (or became) terminated, +inf
                                                while it is not on its way; an entry stays until the retention ends
    cg:sim:{<account>}:index:ips:<subnet>       hash: address -> when the machine holding it becomes terminated
    cg:sim:{<account>}:index:group:<group>      zset: machine id -> the same, for the machines in a security group
    cg:sim:{<account>}:index:network:<network>  zset: machine id -> the same, for the machines with an interface on a
                                                network (zsets, so those gone past the retention go in one command)

Every transaction that writes a machine keeps them (``derive``, called at its commit), from the record as it
read it and as it writes it, so no operation can forget to. A machine becomes terminated lazily (a scheduled
transition, storage.py), so its entries say when instead of being removed then; the readers count only those
still due. A launch drops the addresses it reads past due, and every machine's entries past the retention. An
account made before the indexes (or before this layout) gets them built once, from every record, by the first
transaction that reads them (``VERSION`` in its meta).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from backends.simulator.storage import Rec, Tx
from translator.model import Machine, MachineState

#: The indexes' layout; an account whose meta says otherwise has them built again from its records.
VERSION = 2
_META = "machine_index"
LIVE = "index:live"


def _ips(subnet_id: str) -> str:
    return f"index:ips:{subnet_id}"


def _group(group_id: str) -> str:
    return f"index:group:{group_id}"


def _network(network_id: str) -> str:
    return f"index:network:{network_id}"


#: the index of each kind of thing a machine holds (what ``forget`` drops with it)
_HOLDINGS: dict[str, Callable[[str], str]] = {"subnet": _ips, "security_group": _group, "network": _network}


@dataclass(frozen=True, slots=True)
class Held:
    """What one machine takes from the account until ``until``: a place under the quota, its addresses, and a
    place in its security groups and networks."""

    until: float
    addresses: frozenset[tuple[str, str]]  # (subnet id, address)
    groups: frozenset[str] = frozenset()
    networks: frozenset[str] = frozenset()


def held(rec: Rec[Machine] | None) -> Held | None:
    """What a record holds; None once it is terminated (or gone).

    As the listing shows it: a record written before machines had interfaces holds its own address
    (``interfaces.primary_of``), and a machine being terminated holds its address until it is terminated.
    """
    if rec is None or rec.obj.state is MachineState.TERMINATED:
        return None
    pending = rec.sim.get("_next")
    ends = pending is not None and pending["set"].get("state") == MachineState.TERMINATED
    machine = rec.obj
    if machine.interfaces:
        addresses = frozenset((i.subnet_id, i.private_ip) for i in machine.interfaces if i.subnet_id and i.private_ip)
    elif machine.subnet_id and machine.private_ip:
        addresses = frozenset({(machine.subnet_id, machine.private_ip)})
    else:
        addresses = frozenset()
    networks = frozenset(n for n in (machine.network_id, *(i.network_id for i in machine.interfaces)) if n)
    return Held(pending["due"] if ends else math.inf, addresses, frozenset(machine.security_group_ids), networks)


def _entries(native_id: str, found: Held | None) -> frozenset[tuple[str, str]]:
    """The (index, member) pairs of what a machine holds: itself in the live index and in those of its groups and
    networks, its addresses in their subnets'."""
    if found is None:
        return frozenset()
    return frozenset(
        {
            (LIVE, native_id),
            *((_ips(subnet_id), ip) for subnet_id, ip in found.addresses),
            *((_group(group_id), native_id) for group_id in found.groups),
            *((_network(network_id), native_id) for network_id in found.networks),
        }
    )


def derive(tx: Tx) -> None:
    """The index writes that follow from the machines ``tx`` writes (``Store.derive``)."""
    changes = []
    for native_id, rec in tx.changed("machine"):
        before, after = held(tx.original("machine", native_id)), held(rec)
        if before != after:
            changes.append((native_id, before, after))
    _write(tx, changes)


def _write(tx: Tx, changes: Iterable[tuple[str, Held | None, Held | None]]) -> None:
    """The index writes of machines changing from what they held ``before`` to ``after`` (None: nothing).

    PERF: one command per index written, whatever the number of machines (a launch of 500 writes four)."""
    prefix = tx.store.prefix
    dropped: dict[str, list[str]] = {}
    kept: dict[str, dict[str, float]] = {}
    for native_id, before, after in changes:
        now = _entries(native_id, after)
        for name, member in _entries(native_id, before) - now:
            dropped.setdefault(name, []).append(member)
        if after is not None:
            for name, member in now:
                kept.setdefault(name, {})[member] = after.until
    for name, members in dropped.items():
        remove = "HDEL" if _by_address(name) else "ZREM"
        tx.later(
            lambda pipe, key=prefix + name, remove=remove, members=members: pipe.execute_command(remove, key, *members)
        )
    for name, until in kept.items():
        if _by_address(name):
            mapping = {member: repr(due) for member, due in until.items()}
            tx.later(lambda pipe, key=prefix + name, mapping=mapping: pipe.hset(key, mapping=mapping))
        else:
            tx.later(lambda pipe, key=prefix + name, until=until: pipe.zadd(key, until))


def _by_address(name: str) -> bool:
    """Whether an index is a subnet's (a hash by address: an address passes from machine to machine)."""
    return name.startswith("index:ips:")


def live_count(tx: Tx) -> int:
    """Machines not terminated now: those under the account's quota (those gone past the retention are forgotten
    on the way, ``_forget_gone``)."""
    rebuilt = _ensure(tx)
    if rebuilt is not None:
        return sum(1 for found in rebuilt.values() if found.until > tx.now)
    _forget_gone(tx)
    return int(tx.read(LIVE, lambda pipe, key: pipe.zcount(key, f"({tx.now!r}", "+inf")))


def _forget_gone(tx: Tx) -> None:
    """Machines terminated longer ago than the retention leave Redis, records and index entries, with this
    transaction's writes (a launch's): gone from view, they would otherwise stay until something lists them."""
    cutoff = tx.now - tx.store.retention
    gone: list[bytes] = tx.read(LIVE, lambda pipe, key: pipe.zrangebyscore(key, "-inf", cutoff))
    if gone:
        tx.prune("machine", [native_id.decode() for native_id in gone])
        by_machine = [LIVE, *(_group(r.obj.native_id) for r in tx.all("security_group"))]
        by_machine += [_network(r.obj.native_id) for r in tx.all("network")]
        for name in by_machine:
            tx.later(lambda pipe, key=tx.store.prefix + name: pipe.zremrangebyscore(key, "-inf", cutoff))


def held_ips(tx: Tx, subnet_id: str) -> set[str]:
    """The addresses of a subnet that machines not terminated now hold (those past due are dropped at commit)."""
    rebuilt = _ensure(tx)
    if rebuilt is not None:
        return {ip for found in rebuilt.values() if found.until > tx.now for s, ip in found.addresses if s == subnet_id}
    name = _ips(subnet_id)
    entries: dict[bytes, bytes] = tx.read(name, lambda pipe, key: pipe.hgetall(key))
    taken: set[str] = set()
    stale: list[bytes] = []
    for ip, until in entries.items():
        if float(until) > tx.now:
            taken.add(ip.decode())
        else:
            stale.append(ip)
    if stale:
        key = tx.store.prefix + name
        tx.later(lambda pipe: pipe.hdel(key, *stale))  # before any entry the commit itself derives
    return taken


def machines_in_group(tx: Tx, group_id: str) -> set[str]:
    """The machines not terminated now that are in a security group."""
    return _machines_holding(tx, _group(group_id), lambda found: group_id in found.groups)


def machines_on_network(tx: Tx, network_id: str) -> set[str]:
    """The machines not terminated now with an interface on a network."""
    return _machines_holding(tx, _network(network_id), lambda found: network_id in found.networks)


def _machines_holding(tx: Tx, name: str, holds: Callable[[Held], bool]) -> set[str]:
    """The machines index ``name`` has still due (``holds``: whether a machine is in it, when ``tx`` builds them)."""
    rebuilt = _ensure(tx)
    if rebuilt is not None:
        return {native_id for native_id, found in rebuilt.items() if found.until > tx.now and holds(found)}
    members: list[bytes] = tx.read(name, lambda pipe, key: pipe.zrangebyscore(key, f"({tx.now!r}", "+inf"))
    return {member.decode() for member in members}


def forget(tx: Tx, kind: str, native_id: str) -> None:
    """The index of a subnet, security group or network being deleted goes with it (only entries past due are left
    in it: nothing deletes one that a machine not terminated holds)."""
    key = tx.store.prefix + _HOLDINGS[kind](native_id)
    tx.later(lambda pipe: pipe.delete(key))


def _ensure(tx: Tx) -> dict[str, Held] | None:
    """Build the indexes from every record, once per account (``VERSION``). In the transaction that builds them,
    what they will hold (by machine): its reads answer from that, their keys being rewritten only at commit."""
    if _META in tx.notes:
        return tx.notes[_META]  # type: ignore[no-any-return]
    if tx.get_meta(_META) == VERSION:
        tx.notes[_META] = None
        return None
    prefix = tx.store.prefix
    records = tx.all("machine")
    stale = {prefix + LIVE}
    for kind, index in _HOLDINGS.items():
        stale.update(prefix + index(rec.obj.native_id) for rec in tx.all(kind))
    entries: dict[str, Held] = {}
    terminated: dict[str, float] = {}
    for rec in records:
        found = held(rec)
        if found is not None:
            entries[rec.obj.native_id] = found
            stale.update(prefix + name for name, _ in _entries(rec.obj.native_id, found))
        else:  # terminated but still in view: kept in the index until its retention ends (``_forget_gone``)
            terminated[rec.obj.native_id] = rec.obj.updated
    tx.later(lambda pipe: pipe.delete(*stale))
    if terminated:
        tx.later(lambda pipe: pipe.zadd(prefix + LIVE, terminated))
    _write(tx, ((native_id, None, found) for native_id, found in entries.items()))
    tx.set_meta(_META, VERSION)
    tx.notes[_META] = entries
    return entries
