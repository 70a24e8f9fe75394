"""The simulator's templates: listing by ``templatefilter``, and an account's own templates made with
``createTemplate`` (from a snapshot, or from the volume of a stopped VM), changed with ``updateTemplate`` and
removed with ``deleteTemplate`` (registered in ``server.COMMANDS``).

The configured templates are the administrator's public, featured ones; an account's template is private,
listed by ``self`` at once and by ``executable``/``selfexecutable`` once it is ready.
"""

from __future__ import annotations

from typing import Any

from peers.cloudstack.server import Call, by_id_and_name, denied, param_error, start_job

TEMPLATE_CMD = "org.apache.cloudstack.api.command.user.template."
TEMPLATE_FILTERS = {"featured", "self", "selfexecutable", "sharedexecutable", "executable", "community", "all"}


def _admins(record: dict[str, Any]) -> bool:
    return "_owner" not in record


def _filtered(call: Call, kind: str, record: dict[str, Any]) -> bool:
    """Whether ``templatefilter=kind`` lists the template for this call."""
    if _admins(record):
        public = {
            "featured": record["isfeatured"],
            "community": not record["isfeatured"],
            "executable": record["isready"],
            "all": True,
        }
        return bool(public.get(kind, False))
    if not call.visible(record):
        return False
    return kind in ("self", "all") or (kind in ("selfexecutable", "executable") and record["isready"])


def list_templates(call: Call) -> dict[str, Any]:
    kind = call.need("templatefilter")
    if kind not in TEMPLATE_FILTERS:
        raise param_error(f"Unable to execute API command listtemplates due to invalid value {kind} for templatefilter")
    if call.get("projectid") not in (None, "", "-1"):
        call.owner()  # another account's project is refused, not listed empty
    zone = call.get("zoneid")
    records = [
        r
        for r in by_id_and_name(call, list(call.cloud.tables["templates"].values()))
        if not r.get("_gone") and _filtered(call, kind, r) and (not zone or r["zoneid"] == zone)
    ]
    items = [
        {k: v for k, v in r.items() if not k.startswith("_")} | {"tags": []}
        if _admins(r)
        else call.cloud.render("templates", r)
        for r in records
    ]
    return call.listing("templates", "template", items, rendered=True)


def _own(call: Call, name: str = "id") -> dict[str, Any]:
    """A template the caller may change: its own (the administrator's public ones are refused)."""
    template = call.find("templates", name)
    if _admins(template):
        raise denied(f"Account {call.account.name} does not have permission to operate with resource {template['id']}")
    return template


def _os_name(call: Call, ostypeid: str) -> str:
    known = (t for t in call.cloud.tables["templates"].values() if t.get("ostypeid") == ostypeid)
    return next((t["ostypename"] for t in known), "Other Linux (64-bit)")


def create_template(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    name = call.need("name")
    ostypeid = call.need("ostypeid")
    snapshot_id, volume_id = call.get("snapshotid"), call.get("volumeid")
    if bool(snapshot_id) == bool(volume_id):
        raise param_error("Specify either the snapshot id or the volume id to create a template from, not both")
    if snapshot_id:
        snapshot = call.find("snapshots", "snapshotid")
        if snapshot["state"] != "BackedUp":
            raise param_error(f"Snapshot id={snapshot_id} is not in BackedUp state yet and can't be used for template")
        volume = cloud.tables["volumes"].get(snapshot["volumeid"]) or {}
        size, zoneid = snapshot["_size"], snapshot["zoneid"]
    else:
        volume = call.find("volumes", "volumeid")
        vm = cloud.tables["vms"].get(volume.get("virtualmachineid") or "")
        if vm is not None and vm["state"] != "Stopped":
            raise param_error(f"VolumeId: {volume_id} is not for Stopped VM, please stop the VM to create a template")
        size, zoneid = volume["size"], volume["zoneid"]
    owner = call.owner()
    source_vm = cloud.tables["vms"].get(volume.get("virtualmachineid") or "") or {}
    template = cloud.add(
        "templates",
        owner,
        name=name,
        displaytext=call.get("displaytext") or name,
        ispublic=False,
        isfeatured=False,
        isready=False,
        passwordenabled=call.get("passwordenabled", "false").lower() == "true",
        format="QCOW2",
        hypervisor=source_vm.get("hypervisor", "KVM"),
        ostypeid=ostypeid,
        ostypename=_os_name(call, ostypeid),
        size=size,
        templatetype="USER",
        crossZones=False,
        isextractable=False,
        status="Creating",
        zoneid=zoneid,
        zonename=cloud.zones[zoneid]["name"],
        sourcetemplateid=source_vm.get("templateid"),
        _fails=False,
    )

    def finish() -> dict[str, Any]:
        template.update(isready=True, status="Download Complete")
        return {"template": cloud.render("templates", template)}

    delay = cloud.timings.get("template", cloud.timings["snapshot"])
    job = start_job(call, TEMPLATE_CMD + "CreateTemplateCmd", delay, finish, ("Template", template["id"]))
    return {"id": template["id"], "jobid": job.id}


def update_template(call: Call) -> dict[str, Any]:
    template = _own(call)
    for key in ("name", "displaytext"):
        if call.get(key):
            template[key] = call.get(key)
    return {"template": call.cloud.render("templates", template)}


def delete_template(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    template = _own(call)
    users = [
        v["id"] for v in cloud.tables["vms"].values() if v.get("templateid") == template["id"] and not v.get("_gone")
    ]
    if users and call.get("forced", "false").lower() != "true":
        raise param_error(
            f"Unable to delete template with id: {template['id']} because VM instances: {users} are using it."
        )

    def finish() -> dict[str, Any]:
        template["_gone"] = True
        return {"success": True}

    job = start_job(
        call, TEMPLATE_CMD + "DeleteTemplateCmd", cloud.timings["job"], finish, ("Template", template["id"])
    )
    return {"jobid": job.id}


COMMANDS = {
    "listtemplates": list_templates,
    "createtemplate": create_template,
    "updatetemplate": update_template,
    "deletetemplate": delete_template,
}
