"""docker-compose.yaml as local processes: the stack tests start each compose service's own command and environment.

No Docker engine runs here, so the stack tier reads the compose file and turns every service into a process on
127.0.0.1. Only what a container gets from its isolation is translated, each by one rule below:
- service host names become 127.0.0.1 and each container port gets a free host port (``Local.ports``);
- container paths become folders: bind mounts their source, named volumes a folder per volume, image paths the
  repository's copy (``IMAGE_PATHS``);
- database names get the session's prefix (one fresh PostgreSQL database each, dropped at the end);
- a few variables that the image or the container sets (``container_env``).
Everything else (commands, options, environment, init script) is taken as compose declares it, so a change to the
compose file changes what the tests run.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.test_compose import command, environment, interpolate, mounts

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
# Paths that exist in the image (docker/Dockerfile COPY) rather than as a mount.
IMAGE_PATHS = {"/opt/leadscore/docker": ROOT / "docker"}
# The official Airflow image's entrypoint runs these as themselves, anything else as `airflow <command>`.
ENTRYPOINT_PASSTHROUGH = {"bash", "python"}
PORT_FLAGS = ("--port", "--web-port", "--sftp-port")


@dataclass
class Local:
    """Where the compose services live on this machine for one test session."""

    root: Path  # the session's folder: one sub-folder per named volume, logs
    db_prefix: str  # prefix of the session's PostgreSQL databases
    ports: dict[str, dict[int, int]]  # service -> {container port: host port}
    redis_db: int = 0
    hosts: dict[str, str] = field(default_factory=dict)  # extra host-name mapping (none by default)

    def volume(self, name: str) -> Path:
        path = self.root / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def db_name(self, name: str) -> str:
        return f"{self.db_prefix}_{name}"


def load(variables: dict[str, str]) -> dict[str, Any]:
    """docker-compose.yaml interpolated with ``variables`` (what compose reads from the shell / project .env)."""
    missing: set[str] = set()
    config = interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), variables, missing)
    return config


def path_map(service: dict[str, Any], local: Local) -> list[tuple[str, Path]]:
    """Container path -> local path for a service's mounts and the image's own files, longest prefix first."""
    pairs: list[tuple[str, Path]] = list(IMAGE_PATHS.items())
    for m in mounts(service):
        if m["type"] == "bind":
            pairs.append((m["target"], (ROOT / m["source"]).resolve()))
        else:
            pairs.append((m["target"], local.volume(m["source"])))
    return sorted(pairs, key=lambda p: len(p[0]), reverse=True)


def _translate(text: str, service: dict[str, Any], local: Local) -> str:
    for svc, mapping in local.ports.items():
        for container, host in mapping.items():
            text = text.replace(f"//{svc}:{container}", f"//127.0.0.1:{host}")
            text = text.replace(f"@{svc}:{container}", f"@127.0.0.1:{host}")
    # URLs of services without a published port mapping (PostgreSQL and Redis are the machine's own).
    text = re.sub(r"@postgres:5432/(\w+)", lambda m: f"@127.0.0.1:5432/{local.db_name(m.group(1))}", text)
    text = re.sub(r"redis://redis:6379/\d+", f"redis://127.0.0.1:6379/{local.redis_db}", text)
    for target, source in path_map(service, local):
        text = re.sub(rf"(?<![\w/]){re.escape(target)}(?=/|$|\s|:)", str(source), text)
    return text


def service_env(config: dict[str, Any], name: str, local: Local, env_file: dict[str, str]) -> dict[str, str]:
    """The environment compose gives service ``name``: its ``env_file`` (here ``env_file``, the test's .env),
    overridden by its ``environment``, translated to local hosts, ports and paths."""
    service = config["services"][name]
    env = dict(env_file) if service.get("env_file") else {}
    env.update({k: _translate(v, service, local) for k, v in environment(service).items()})
    return env


def service_command(config: dict[str, Any], name: str, local: Local) -> list[str]:
    """The argv compose runs for service ``name``, as a local process of this interpreter's environment."""
    service = config["services"][name]
    argv = [_translate(a, service, local) for a in command(service)]
    ports = local.ports.get(name, {})
    for i, arg in enumerate(argv[:-1]):
        if arg in PORT_FLAGS and int(argv[i + 1]) in ports:
            argv[i + 1] = str(ports[int(argv[i + 1])])
        if arg == "--host":
            argv[i + 1] = "127.0.0.1"  # a container binds 0.0.0.0 behind its published 127.0.0.1 port
        if arg == "--advertise-host":
            argv[i + 1] = "127.0.0.1"
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    if argv[0] in ENTRYPOINT_PASSTHROUGH:
        return argv
    return [str(Path(sys.executable).with_name("airflow")), *argv]


def container_env(local: Local, airflow_home: Path) -> dict[str, str]:
    """What the image and the container isolation provide: the interpreter's bin first on PATH, AIRFLOW_HOME, and
    the api-server bound to 127.0.0.1 (a container binds all interfaces behind its published 127.0.0.1 port)."""
    import os

    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "HOME": os.environ.get("HOME", str(local.root)),
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
    }


def healthcheck_argv(config: dict[str, Any], name: str) -> list[str]:
    """A service's healthcheck command as argv (``CMD`` as is, ``CMD-SHELL`` split like the shell would)."""
    import shlex

    test = config["services"][name]["healthcheck"]["test"]
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1])
    return list(test[1:])
