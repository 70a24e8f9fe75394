"""Every canonical state has a row in every CIMI state table (STYLE rule 3: no state falls through)."""

from __future__ import annotations

import enum

import pytest

from frontends.cimi import states
from frontends.cimi.resources.machine_parts import INTERFACE_STATES
from translator import model
from translator.model import AttachmentState, InterfaceState

#: every table, by the canonical enum it maps
TABLES: dict[type, dict] = {**states.TABLES, InterfaceState: INTERFACE_STATES}
#: canonical state enums CIMI does not show: an attachment is a MachineVolume, present or absent
NOT_SHOWN = {AttachmentState}


@pytest.mark.parametrize("enum_cls", list(TABLES), ids=lambda e: e.__name__)
def test_every_canonical_state_has_a_row(enum_cls: type[enum.Enum]) -> None:
    table = TABLES[enum_cls]
    assert set(table) == set(enum_cls), f"{enum_cls.__name__}: missing {set(enum_cls) - set(table)}"
    assert all(isinstance(v, str) and v.isupper() for v in table.values())


def test_every_state_enum_has_a_table() -> None:
    enums = {
        obj
        for name, obj in vars(model).items()
        if isinstance(obj, type) and issubclass(obj, enum.Enum) and name.endswith("State")
    }
    assert enums, "the canonical model declares its states as *State enums"
    assert enums - NOT_SHOWN == set(TABLES)
