"""Images captured from machines as CloudStack templates, renamed and deleted.

CloudStack makes a template from a volume only while its VM is stopped, so a running machine is captured
through a snapshot of its ROOT volume: ``createSnapshot``, then ``createTemplate`` from the snapshot, then the
snapshot is deleted (the template no longer needs it once made). The machine keeps running throughout. The new
template is the account's own, private: ``catalog`` lists templates with filter ``self`` as well, so it is seen
while still being made.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from backends.cloudstack import catalog, machines
from translator.errors import CloudgateError, Conflict, Forbidden, InvalidParameter, NotFound
from translator.model import Image, ImageSpec, ImageUpdate, MachineState

if TYPE_CHECKING:
    from backends.cloudstack.backend import CloudStackBackend


def _os_type(b: CloudStackBackend, vm: dict[str, Any]) -> str:
    """The VM's guest OS type (createTemplate requires one): its own, or its template's."""
    if vm.get("guestosid"):
        return str(vm["guestosid"])
    found = b.cloud.listing(
        "listTemplates",
        "template",
        {"templatefilter": "executable", "id": vm.get("templateid")},
        kind="image",
        what="os",
    )
    if not found or not found[0].get("ostypeid"):
        raise Conflict(f"CloudStack names no OS type for the machine '{vm['id']}'.", kind="machine", reason="state")
    return str(found[0]["ostypeid"])


def create_image(b: CloudStackBackend, spec: ImageSpec) -> Image:
    vm = machines.need_vm(b, spec.machine_id)
    state = machines.machine_state(str(vm.get("state")))
    if state in (MachineState.TERMINATED, MachineState.TERMINATING, MachineState.ERROR):
        raise Conflict(
            f"The machine '{spec.machine_id}' cannot be captured while {state}.", kind="machine", reason="state"
        )
    roots = b.cloud.listing(
        "listVolumes", "volume", {"virtualmachineid": vm["id"], "type": "ROOT"}, kind="volume", what="root volume"
    )
    if not roots:
        raise Conflict(f"The machine '{spec.machine_id}' has no root disk to capture.", kind="machine", reason="state")
    os_type = _os_type(b, vm)
    snapshot = b.cloud.start("createSnapshot", {"volumeid": roots[0]["id"]}, kind="image", what="snapshot root disk")
    snapshot_id = snapshot.get("id")  # known before the job ends, so that a failure still removes it
    try:
        b.cloud.wait(snapshot["jobid"], kind="image", what="snapshot root disk")
        params = {
            "name": spec.name,
            "displaytext": spec.description or spec.name,
            "ostypeid": os_type,
            "snapshotid": snapshot_id,
        }
        answer = b.cloud.start("createTemplate", params, kind="image", what="create template")
        b.cloud.wait(answer["jobid"], kind="image", what="create template")  # the snapshot is needed until then
    finally:
        if snapshot_id:
            with contextlib.suppress(CloudgateError):  # best effort: a leftover snapshot is listed, not lost
                b.cloud.start("deleteSnapshot", {"id": snapshot_id}, kind="snapshot", what="delete capture snapshot")
    return _need_own(b, answer["id"])[1]


def _own_template(b: CloudStackBackend, native_id: str) -> dict[str, Any] | None:
    try:
        found = b.cloud.listing(
            "listTemplates", "template", {"templatefilter": "self", "id": native_id}, kind="image", what="own template"
        )
    except (NotFound, InvalidParameter):  # CloudStack's PARAM_ERROR for an id naming nothing
        return None
    return next((t for t in found if t["id"] == native_id), None)


def _need_own(b: CloudStackBackend, native_id: str) -> tuple[dict[str, Any], Image]:
    """One of the account's own templates; Forbidden for a template it may only use, NotFound for none."""
    template = _own_template(b, native_id)
    if template is None:
        if catalog.get_images(b, [native_id]):
            raise Forbidden(f"The image '{native_id}' is not the account's own.", kind="image", reason="owner")
        raise NotFound(f"The image '{native_id}' does not exist.", kind="image")
    return template, catalog.to_image(template)


def delete_image(b: CloudStackBackend, native_id: str) -> None:
    """``deleteTemplate`` in every zone; ``forced``, as machines launched from it keep their own disks."""
    _need_own(b, native_id)
    params = {"id": native_id, "forced": "true"}
    b.cloud.run("deleteTemplate", params, kind="image", what="delete template", target=native_id)


def update_image(b: CloudStackBackend, native_id: str, update: ImageUpdate) -> Image:
    template, image = _need_own(b, native_id)
    params = {"id": native_id, "name": update.name or None, "displaytext": update.description or None}
    if update.description == "":
        params["displaytext"] = update.name or template.get("name")  # CloudStack keeps no empty display text
    if params["name"] or params["displaytext"]:
        changed = b.cloud.call("updateTemplate", params, kind="image", what="update template").get("template")
        return catalog.to_image(changed) if changed else _need_own(b, native_id)[1]
    return image
