"""The CIMI primer's scenario end to end, for any backend: discover, list, create (by value and by template),
follow jobs, stop, start, attach and detach a volume, capture, run a system, delete everything.

Each step checks the documents against DSP0263's tables (``dsp0263.check``). Steps a backend cannot do are
skipped only when its ResourceMetadata says so: a client discovers what it cannot do instead of failing.
"""

from __future__ import annotations

from typing import Any

from cimiclient import Cimi
from dsp0263 import check, check_collection


def offered(c: Cimi, type_name: str) -> dict[str, Any] | None:
    answer = c.get(f"resourceMetadata/{type_name}")
    return check("ResourceMetadata", answer.doc) if answer.status == 200 else None


def machine_state(c: Cimi, href: str) -> str:
    return check("Machine", c.ok("GET", href).doc)["state"]


def run_primer(c: Cimi, *, with_system: bool = True, image_name: str = "") -> None:
    """The scenario; ``image_name`` picks the image to boot (a cloud may list images its hypervisor cannot run)."""
    # 1. discover
    ep = check("CloudEntryPoint", c.ok("GET", "cloudEntryPoint").doc)
    assert ep["baseURI"] == c.base + "/"
    for name in ("machines", "machineConfigs", "machineImages", "machineTemplates", "jobs", "resourceMetadata"):
        assert ep[name]["href"] == f"{c.base}/{name}", (name, ep.get(name))
    machine_meta = offered(c, "Machine")
    assert machine_meta is not None
    actions = {a["name"] for a in machine_meta.get("actions", ())}
    assert {"start", "stop", "restart"} <= actions

    # 2. configurations and images
    configs = check_collection(
        "MachineConfiguration", c.ok("GET", ep["machineConfigs"]["href"]).doc, "machineConfigurations"
    )
    assert configs
    smallest = min(configs, key=lambda d: (d["cpu"], d["memory"]))
    images = check_collection("MachineImage", c.ok("GET", ep["machineImages"]["href"]).doc, "machineImages")
    image = next(i for i in images if i["state"] == "AVAILABLE" and (not image_name or i.get("name") == image_name))
    before = {m["id"] for m in c.members("machines", "machines")}

    # 3. a machine from an inline template: the smallest configuration that fits the figures asked
    by_value = {
        "name": "primer-by-value",
        "description": "made from a template by value",
        "properties": {"suite": "primer"},
        "machineTemplate": {
            "machineConfig": {"cpu": smallest["cpu"], "memory": smallest["memory"]},
            "machineImage": {"href": image["id"]},
        },
    }
    made = c.call("POST", "machines", by_value, "MachineCreate")
    job = check("Job", c.accepted(made))
    first = made.headers["Location"]
    assert job["targetResource"]["href"] == first and job["action"] == "add"
    assert [r["href"] for r in job.get("affectedResources", ())] == [first]
    m1 = check("Machine", c.ok("GET", first).doc)
    assert m1["state"] == "STARTED" and m1["name"] == "primer-by-value"
    assert m1["properties"] == {"suite": "primer"}
    assert m1["machineConfig"]["href"] == smallest["id"] and m1["machineImage"]["href"] == image["id"]
    assert m1["cpu"] == smallest["cpu"] and m1["memory"] == smallest["memory"]

    # 4. a machine from a template by reference
    template = c.ok(
        "POST",
        "machineTemplates",
        {"name": "primer-template", "machineConfig": {"href": smallest["id"]}, "machineImage": {"href": image["id"]}},
        "MachineTemplateCreate",
        status=201,
    )
    template_href = template.headers["Location"]
    check("MachineTemplate", c.ok("GET", template_href).doc)
    made = c.call(
        "POST", "machines", {"name": "primer-by-ref", "machineTemplate": {"href": template_href}}, "MachineCreate"
    )
    c.accepted(made)
    second = made.headers["Location"]
    assert machine_state(c, second) == "STARTED"
    listed = {m["id"] for m in c.members("machines", "machines")}
    assert {first, second} <= listed

    # 5. stop, then start
    c.accepted(c.action(first, "stop"))
    assert machine_state(c, first) == "STOPPED"
    ops = {o["rel"].rsplit("/", 1)[-1] for o in c.ok("GET", first).doc["operations"]}
    assert "start" in ops and "stop" not in ops
    c.accepted(c.action(first, "start"))
    assert machine_state(c, first) == "STARTED"

    # 6. attach a new volume, then detach it
    if "volumes" in ep:
        volume_answer = c.call(
            "POST",
            "volumes",
            {"name": "primer-volume", "volumeTemplate": {"volumeConfig": {"capacity": 1024 * 1024}}},
            "VolumeCreate",
        )
        c.accepted(volume_answer)
        volume_href = volume_answer.headers["Location"]
        volume = check("Volume", c.ok("GET", volume_href).doc)
        assert volume["capacity"] == 1024 * 1024 and volume["state"] == "AVAILABLE"
        attach = c.call("POST", f"{first}/volumes", {"volume": {"href": volume_href}}, "MachineVolume")
        c.accepted(attach)
        attached = check_collection("MachineVolume", c.ok("GET", f"{first}/volumes").doc, "volumes")
        assert volume_href in [a["volume"]["href"] for a in attached]
        link = next(a["id"] for a in attached if a["volume"]["href"] == volume_href)
        detach = c.call("DELETE", link)
        c.accepted(detach)
        assert volume_href not in [a["volume"]["href"] for a in c.members(f"{first}/volumes", "volumes")]
        c.accepted(c.call("DELETE", volume_href))
        assert c.get(volume_href).status == 404

    # 7. capture an image of the machine
    if "capture" in actions:
        captured = c.action(first, "capture")
        c.accepted(captured)
        image_href = captured.headers["Location"]
        new_image = check("MachineImage", c.ok("GET", image_href).doc)
        assert new_image["state"] == "AVAILABLE"
        assert image_href in {i["id"] for i in c.members("machineImages", "machineImages")}
        c.accepted(c.call("DELETE", image_href))

    # 8. a system of two machines from a system template, acted on and deleted as one
    if with_system and "systems" in ep:
        system_template = c.ok(
            "POST",
            "systemTemplates",
            {
                "name": "primer-system",
                "componentDescriptors": [
                    {
                        "name": "web",
                        "type": f"http://schemas.dmtf.org/cimi/{c.version}/Machine",
                        "machineTemplate": {"href": template_href},
                        "quantity": 2,
                    }
                ],
            },
            "SystemTemplate",
            status=201,
        )
        created = c.call(
            "POST",
            "systems",
            {"name": "primer", "systemTemplate": {"href": system_template.headers["Location"]}},
            "SystemCreate",
        )
        c.accepted(created)
        system_href = created.headers["Location"]
        system = check("System", c.ok("GET", system_href).doc)
        members = c.members(system["machines"]["href"], "machines")
        assert len(members) == 2
        system_machines = [m["machine"]["href"] for m in members]
        assert all(machine_state(c, h) == "STARTED" for h in system_machines)
        c.accepted(c.action(system_href, "stop"))
        assert all(machine_state(c, h) == "STOPPED" for h in system_machines)
        c.accepted(c.call("DELETE", system_href))
        assert c.get(system_href).status == 404
        assert all(c.get(h).status == 404 for h in system_machines)
        assert c.call("DELETE", system_template.headers["Location"]).status == 204

    # 9. delete everything
    for href in (first, second):
        c.accepted(c.call("DELETE", href))
        assert c.get(href).status == 404
    assert c.call("DELETE", template_href).status == 204
    assert c.get(template_href).status == 404
    assert {m["id"] for m in c.members("machines", "machines")} == before
