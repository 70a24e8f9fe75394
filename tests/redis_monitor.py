"""What Redis ran while something ran: for tests that a read or a write costs what it should, in commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis


def commands_during(client: redis.Redis, action: Callable[[], Any]) -> list[tuple[str, ...]]:
    """The commands Redis ran while ``action`` ran (MONITOR, on a connection of its own), as name and arguments."""
    seen: list[tuple[str, ...]] = []
    with client.monitor() as monitor:
        client.echo("start")  # MONITOR is in place once it has seen this
        while monitor.next_command()["command"] != "ECHO start":
            pass
        action()
        client.echo("end")
        while (command := monitor.next_command()["command"]) != "ECHO end":
            seen.append(tuple(arg.strip('"') for arg in command.split()))
    return seen
