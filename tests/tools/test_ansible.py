"""Ansible's amazon.aws modules (shipped in the ``ansible`` wheel) drive the gateway as they drive EC2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ec2util import unique

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/amazon.aws.aws:
      endpoint_url: "{endpoint}"
      access_key: demo
      secret_key: demo-secret
      region: local-1
  tasks:
    - name: a key pair
      amazon.aws.ec2_key:
        name: "{name}-key"
      register: key

    - name: a security group with a rule
      amazon.aws.ec2_security_group:
        name: "{name}-sg"
        description: ansible test group
        rules:
          - proto: tcp
            ports: [22]
            cidr_ip: 0.0.0.0/0
      register: group

    - name: the image to launch
      amazon.aws.ec2_ami_info:
        owners: [amazon]
        filters:
          name: ubuntu-24.04
      register: images

    - name: an instance, waited for
      amazon.aws.ec2_instance:
        name: "{name}"
        image_id: "{{{{ images.images[0].image_id }}}}"
        instance_type: t3.micro
        key_name: "{{{{ key.key.name }}}}"
        security_group: "{{{{ group.group_id }}}}"
        wait: true
        wait_timeout: 60
        state: running
        tags:
          suite: "{name}"
      register: launched

    - name: what ec2_instance_info sees
      amazon.aws.ec2_instance_info:
        filters:
          "tag:suite": "{name}"
          instance-state-name: [running]
      register: info

    - name: facts for the test
      ansible.builtin.copy:
        dest: "{facts}"
        content: >-
          {{{{ {{"launched": launched.instance_ids, "info": info.instances, "group": group.group_id}} | to_json }}}}

    - name: terminate it, waited for
      amazon.aws.ec2_instance:
        instance_ids: "{{{{ launched.instance_ids }}}}"
        state: absent
        wait: true
        wait_timeout: 60
"""


def test_playbook_creates_waits_for_and_terminates_an_instance(gateway: Any, ec2: Any, tmp_path: Path) -> None:
    name = unique("ansible")
    facts = tmp_path / "facts.json"
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.format(endpoint=gateway.url, name=name, facts=facts))
    (tmp_path / "inventory").write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    env = {
        **os.environ,
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
    }
    binary = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or "ansible-playbook"
    result = subprocess.run(
        [binary, "-i", str(tmp_path / "inventory"), str(playbook)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]

    seen = json.loads(facts.read_text())
    (instance_id,) = seen["launched"]
    (info,) = seen["info"]
    assert info["instance_id"] == instance_id and info["state"]["name"] == "running"
    assert info["tags"] == {"Name": name, "suite": name}
    assert [g["group_id"] for g in info["security_groups"]] == [seen["group"]]
    # the gateway agrees with what the playbook saw, and the instance is gone now
    (found,) = [i for r in ec2.describe_instances(InstanceIds=[instance_id])["Reservations"] for i in r["Instances"]]
    assert found["State"]["Name"] == "terminated" and found["KeyName"] == f"{name}-key"
