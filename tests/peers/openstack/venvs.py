"""Virtualenvs for the OpenStack peers, built once per machine and reused while their pins stay the same.

Keystone and Nova pin library versions that clash with ours (and with each other), so each runs from
its own virtualenv. A venv lives under the cache directory (env ``CLOUDGATE_PEERS_CACHE``, default
``~/.cache/cloudgate-peers``) in a folder named by a hash of its requirements file and the Python
version: editing the pins builds a new one, and an unchanged file reuses it. A file lock keeps two
processes from building the same venv; a marker written last tells a finished venv from a broken build.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = {
    "keystone": HERE / "requirements-keystone.txt",
    "nova": HERE / "requirements-nova.txt",
    "glance": HERE / "requirements-glance.txt",
    "cinder": HERE / "requirements-cinder.txt",
    "neutron": HERE / "requirements-neutron.txt",
}
MARKER = ".cloudgate-complete"
PIP_TIMEOUT = 1800  # seconds for one pip install from a cold cache; a hang fails instead of eating CI's budget

Progress = Callable[[str], None]


def cache_dir() -> Path:
    """Where built venvs are kept: ``$CLOUDGATE_PEERS_CACHE`` or ``~/.cache/cloudgate-peers``."""
    configured = os.environ.get("CLOUDGATE_PEERS_CACHE", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "cloudgate-peers"


def venv_key(requirements: Path) -> str:
    """The cache key: the requirements' bytes plus the interpreter and platform that build the venv."""
    digest = hashlib.sha256()
    digest.update(f"{sys.implementation.name}-{sys.version_info[:3]}-{platform.machine()}\n".encode())
    digest.update(requirements.read_bytes())
    return digest.hexdigest()[:16]


def venv_path(name: str) -> Path:
    """The folder the named peer's venv lives in (built or not)."""
    return cache_dir() / f"{name}-{venv_key(REQUIREMENTS[name])}"


def python(venv: Path) -> Path:
    return venv / "bin" / "python"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clean_env() -> dict[str, str]:
    """Our environment minus what would make the venv's python see this project's interpreter and path."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def ensure_venv(name: str, progress: Progress = print) -> Path:
    """The named peer's venv ("keystone", "nova" or "glance"), built from its pinned requirements if not cached yet."""
    venv = venv_path(name)
    if (venv / MARKER).exists():
        return venv
    with _locked(cache_dir() / f"{name}.lock"):
        if (venv / MARKER).exists():
            return venv
        if venv.exists():
            shutil.rmtree(venv)  # an earlier build died half-way
        started = time.monotonic()
        progress(f"openstack peers: building the {name} virtualenv in {venv} (once per machine)")
        env = clean_env()
        log = venv.with_name(venv.name + ".log")
        with log.open("w") as out:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, stdout=out, stderr=out)
            command = [str(python(venv)), "-m", "pip", "install", "--no-input", "-r", str(REQUIREMENTS[name])]
            result = subprocess.run(command, env=env, stdout=out, stderr=out, timeout=PIP_TIMEOUT, check=False)
        if result.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"building the {name} virtualenv failed (log: {log}):\n{tail}")
        (venv / MARKER).write_text(f"built in {time.monotonic() - started:.1f}s\n")
        progress(f"openstack peers: {name} virtualenv built in {time.monotonic() - started:.1f}s")
        return venv


def build_seconds(venv: Path) -> float | None:
    """How long the cached venv took to build (from its marker), for reports."""
    try:
        return float((venv / MARKER).read_text().split()[2].rstrip("s"))
    except (OSError, IndexError, ValueError):
        return None
