"""Static checks of docker-compose.yaml and docker/: no Docker engine runs here, so the file is checked against the
compose specification's JSON schema and against the project (paths, ports, env vars, commands, versions).

Airflow and MLflow are not imported (seconds each): their CLIs are read from their installed sources with ``ast``.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
SANDBOX_OVERRIDE = ROOT / "docker-compose.sandbox.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA_FILE = ROOT / "tests" / "resources" / "compose-spec.schema.json"
AIRFLOW_VERSION = "3.3.2"
CELERY_SERVICES = {"redis", "airflow-worker"}
# Options of these Airflow config sections come from providers (not installed here), not from core's config.yml.
PROVIDER_CONFIG_SECTIONS = {"celery"}
# Commands the official Airflow image's entrypoint runs as themselves instead of as `airflow <command>`.
ENTRYPOINT_PASSTHROUGH = {"bash", "python"}

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<invalid>))"
)


# ---------------------------------------------------------------------------------------------------------------------
# Helpers: the compose file as Docker would see it
# ---------------------------------------------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv file (``KEY=value`` lines; ``#`` comments; optional surrounding quotes) into a dict."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise ValueError(f"{path}:{number}: not a KEY=value line: {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def interpolate(node: Any, env: dict[str, str], missing: set[str], where: str = "") -> Any:
    """Resolve compose ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``, ``$$`` in every string.

    Args:
        node: the parsed YAML (dicts, lists, scalars).
        env: the variables compose would see (here: .env.example's).
        missing: collects ``"VAR (at path)"`` for every variable that has neither a value nor a default.
        where: the path of ``node`` in the document, for messages.
    Returns:
        A copy of ``node`` with every string interpolated.
    Raises:
        ValueError: a ``$`` that compose would reject (not ``$$``, ``$VAR`` or ``${...}``).
    """
    if isinstance(node, dict):
        return {key: interpolate(value, env, missing, f"{where}.{key}") for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env, missing, f"{where}[{i}]") for i, value in enumerate(node)]
    if not isinstance(node, str):
        return node

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["invalid"] is not None:
            raise ValueError(f"{where}: invalid interpolation in {node!r} (write $$ for a literal $)")
        name = match["braced"] or match["named"]
        op, arg = match["op"], match["arg"]
        value = env.get(name)
        if op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                return arg
            return value
        if op == ":+":
            return arg if value else ""
        if op == "+":
            return arg if value is not None else ""
        if value is None:
            missing.add(f"{name} (at {where.lstrip('.')})")
            return ""
        return value

    return _VAR.sub(replace, node)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """docker-compose.yaml as parsed YAML (anchors and ``<<`` merges resolved, no interpolation)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any], env_example: dict[str, str]) -> dict[str, Any]:
    """docker-compose.yaml interpolated with .env.example's values and the file's defaults."""
    return interpolate(raw, env_example, set())


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return config["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict, whichever of the two syntaxes the file uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    """A service's volumes in long syntax: ``{"type": "bind"|"volume", "source", "target", "read_only"}``."""
    result = []
    for item in service.get("volumes") or []:
        if isinstance(item, dict):
            result.append({"read_only": False, **item})
            continue
        parts = item.split(":")
        source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
        kind = "bind" if source and source.startswith((".", "/", "~")) else "volume"
        result.append({"type": kind, "source": source, "target": target, "read_only": "ro" in parts[2:]})
    return result


def is_airflow_service(service: dict[str, Any]) -> bool:
    """Services of the x-airflow-common anchor: they connect to the metadata DB."""
    return "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in environment(service)


def dockerfile_of(service: dict[str, Any]) -> Path:
    build = service["build"]
    context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
    return context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, with line continuations joined and comments dropped."""
    logical, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip():
            instruction, _, args = pending.strip().partition(" ")
            logical.append((instruction.upper(), args.strip()))
        pending = ""
    return logical


def copy_instructions(path: Path) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY/ADD in a Dockerfile."""
    result = []
    for instruction, args in dockerfile_instructions(path):
        if instruction in ("COPY", "ADD"):
            tokens = [token for token in shlex.split(args) if not token.startswith("--")]
            result.append((tokens[:-1], tokens[-1]))
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Helpers: the CLIs of the installed Airflow and MLflow, read without importing them
# ---------------------------------------------------------------------------------------------------------------------


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # a top-level name: finds the package without importing it
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed in this environment"
    return Path(next(iter(spec.submodule_search_locations)))


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return None


def _kwarg(call: ast.Call, name: str) -> ast.AST | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def airflow_cli_commands() -> dict[str, set[str] | None]:
    """Airflow's core CLI from ``airflow/cli/cli_config.py``: {command: None} or {group: {subcommands}}."""
    tree = ast.parse((package_dir("airflow") / "cli" / "cli_config.py").read_text())
    tuples: dict[str, ast.AST] = {}
    core: ast.AST | None = None
    for node in tree.body:
        target = (
            node.targets[0]
            if isinstance(node, ast.Assign)
            else node.target
            if isinstance(node, ast.AnnAssign)
            else None
        )
        if isinstance(target, ast.Name) and node.value is not None:
            tuples[target.id] = node.value
            if target.id == "core_commands":
                core = node.value
    assert isinstance(core, ast.List | ast.Tuple), "airflow/cli/cli_config.py has no core_commands list any more"

    def names(seq: ast.AST) -> set[str]:
        if isinstance(seq, ast.Name):
            seq = tuples[seq.id]
        return {
            _kwarg(c, "name").value for c in getattr(seq, "elts", []) if isinstance(_kwarg(c, "name"), ast.Constant)
        }

    commands: dict[str, set[str] | None] = {}
    for call in core.elts:
        name = _kwarg(call, "name")
        if not isinstance(name, ast.Constant):
            continue
        subcommands = _kwarg(call, "subcommands")
        commands[name.value] = names(subcommands) if _call_name(call) == "GroupCommand" and subcommands else None
    return commands


def mlflow_server_options() -> set[str]:
    """Every option string (``--host``, ``-h``, ``--serve-artifacts``, ``--no-serve-artifacts``...) of ``mlflow server``."""
    root = package_dir("mlflow")
    shared: dict[str, ast.Call] = {}
    for node in ast.parse((root / "utils" / "cli_args.py").read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and _call_name(node.value) == "option"
        ):
            shared[node.targets[0].id] = node.value
    server = next(
        (
            node
            for node in ast.parse((root / "cli" / "__init__.py").read_text()).body
            if isinstance(node, ast.FunctionDef) and node.name == "server"
        ),
        None,
    )
    assert server is not None, "mlflow/cli/__init__.py defines no `server` command any more"
    options: set[str] = set()
    for decorator in server.decorator_list:
        if isinstance(decorator, ast.Attribute) and decorator.attr in shared:
            decorator = shared[decorator.attr]
        if _call_name(decorator) == "option":
            for arg in decorator.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    options.update(arg.value.split("/"))
    return options


# ---------------------------------------------------------------------------------------------------------------------
# (1) the compose specification
# ---------------------------------------------------------------------------------------------------------------------


def test_validates_against_the_compose_spec_schema(compose: dict[str, Any], schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, "docker-compose.yaml breaks the compose specification:\n" + "\n".join(errors)


def test_the_schema_check_rejects_a_broken_file(compose: dict[str, Any], schema: dict[str, Any]) -> None:
    """The vendored schema is strict enough to catch a misspelt key and a wrong type (so test 1 can fail)."""
    broken = copy.deepcopy(compose)
    broken["services"]["postgres"]["helthcheck"] = broken["services"]["postgres"].pop("healthcheck")
    broken["services"]["mlflow"]["ports"] = "5000"
    messages = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(broken)]
    assert any("helthcheck" in m for m in messages), messages
    assert any("is not of type 'array'" in m for m in messages), messages


def test_schema_is_the_vendored_compose_spec(schema: dict[str, Any]) -> None:
    assert schema["title"] == "Compose Specification"
    assert {"name", "include", "models"} <= set(schema["properties"]), "expected the current compose-spec schema"
    assert (SCHEMA_FILE.parent / "compose-spec.schema.md").exists(), "the schema's provenance note is missing"


def test_docker_compose_config_when_available() -> None:
    """`docker compose config -q` (the real parser) when the compose plugin is installed; it needs no engine."""
    if shutil.which("docker") is None:
        pytest.skip("no docker client")
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    if not (ROOT / ".env").exists():
        pytest.skip("docker compose config needs .env (env_file): cp .env.example .env")
    done = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------------------------------------------------------------
# (2) paths, (3) builds
# ---------------------------------------------------------------------------------------------------------------------


def test_bind_mount_sources_exist_and_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    problems = []
    for name, service in services(compose).items():
        for mount in mounts(service):
            if mount["type"] == "bind":
                if not (ROOT / mount["source"]).exists():
                    problems.append(f"{name}: bind source {mount['source']} does not exist in the repository")
            elif mount["type"] == "volume" and mount["source"] and mount["source"] not in declared:
                problems.append(f"{name}: volume {mount['source']} is not declared under top-level volumes")
    assert not problems, "\n".join(problems)


def test_project_mounts_match_airflow_settings(compose: dict[str, Any]) -> None:
    """dags/, plugins/, include/ are mounted where AIRFLOW__CORE__*_FOLDER and PYTHONPATH say; state is on volumes."""

    airflow = {name: s for name, s in services(compose).items() if is_airflow_service(s)}
    assert {
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    } <= set(airflow)
    for name, service in airflow.items():
        env = environment(service)
        binds = {
            m["source"].rstrip("/").removeprefix("./"): m["target"] for m in mounts(service) if m["type"] == "bind"
        }
        targets = {m["target"]: m for m in mounts(service)}
        assert binds.get("dags") == env["AIRFLOW__CORE__DAGS_FOLDER"], name
        assert binds.get("plugins") == env["AIRFLOW__CORE__PLUGINS_FOLDER"], name
        assert binds.get("include") in env["PYTHONPATH"].split(":"), name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false", name
        home = env["LEADSCORE_HOME"]
        assert targets.get(home, {}).get("type") == "volume", f"{name}: LEADSCORE_HOME {home} is not a named volume"
        assert not any(m["source"] == "sandbox-data" for m in mounts(service)), (
            f"{name}: the sandbox volume is mounted outside the sandbox profile"
        )
        assert env["LEADSCORE_MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
        assert service.get("env_file") == ".env", f"{name}: the connections must come from .env"


def test_named_volume_mount_points_are_created_in_the_image(compose: dict[str, Any]) -> None:
    """A new volume takes its owner from the image's mount point: each must be made by ``mkdir -p`` (itself or as a
    parent) and lie under a ``chown -R airflow`` root in the Dockerfile, or the non-root containers cannot write."""
    for name, service in services(compose).items():
        if "build" not in service:
            continue
        runs = " ".join(
            args for instruction, args in dockerfile_instructions(dockerfile_of(service)) if instruction == "RUN"
        )
        made = {Path(p) for group in re.findall(r"mkdir -p ((?:/[^\s&;]+\s*)+)", runs) for p in group.split()}
        made |= {parent for path in made for parent in path.parents}
        owned = [
            Path(p) for group in re.findall(r"chown -R airflow:\S+ ((?:/[^\s&;]+\s*)+)", runs) for p in group.split()
        ]
        for mount in mounts(service):
            if mount["type"] != "volume":
                continue
            target = Path(mount["target"])
            assert target in made, f"{name}: mount point {target} is not created in the image"
            assert any(target == root or root in target.parents for root in owned), f"{name}: {target} not chowned"


def test_env_files_have_a_committed_example(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        files = service.get("env_file") or []
        for item in [files] if isinstance(files, str) else files:
            path = item if isinstance(item, str) else item["path"]
            assert (ROOT / f"{path}.example").exists() or (ROOT / path).exists(), f"{name}: env_file {path}"


def test_build_context_dockerfile_and_copied_files_exist(compose: dict[str, Any]) -> None:
    built = {name: s for name, s in services(compose).items() if "build" in s}
    assert built, "no service builds the LeadScore image"
    for name, service in built.items():
        dockerfile = dockerfile_of(service)
        assert dockerfile.parent.is_dir() and dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        context = ROOT / service["build"]["context"]
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
        allowed = (
            {line[1:] for line in ignore.read_text().splitlines() if line.startswith("!")} if ignore.exists() else None
        )
        for sources, _ in copy_instructions(dockerfile):
            for source in sources:
                assert (context / source).exists(), f"{dockerfile.name}: COPY source {source} is missing"
                assert allowed is None or source in allowed, f"{ignore.name} excludes {source}, which the image COPYs"


# ---------------------------------------------------------------------------------------------------------------------
# (4) environment variables
# ---------------------------------------------------------------------------------------------------------------------


def test_every_interpolated_variable_has_a_value_or_default(raw: dict[str, Any], env_example: dict[str, str]) -> None:
    missing: set[str] = set()
    interpolate(raw, env_example, missing)
    assert not missing, "variables neither in .env.example nor with a ${VAR:-default}:\n" + "\n".join(sorted(missing))


def test_interpolation_reports_a_variable_without_default(env_example: dict[str, str]) -> None:
    missing: set[str] = set()
    resolved = interpolate({"a": "${NOT_DEFINED_ANYWHERE}-${WITH_DEFAULT:-x}-$${HOSTNAME}"}, env_example, missing)
    assert resolved == {"a": "-x-${HOSTNAME}"}
    assert missing == {"NOT_DEFINED_ANYWHERE (at a)"}


def test_connections_come_from_env_example(env_example: dict[str, str]) -> None:
    for name in ("AIRFLOW_CONN_SLATE_API", "AIRFLOW_CONN_SLATE_SFTP"):
        assert json.loads(env_example[name])["conn_type"], name


def test_leadscore_and_airflow_variables_exist(compose: dict[str, Any]) -> None:
    """Every LEADSCORE_* is a Settings field; every AIRFLOW__SECTION__KEY[_CMD] is an option of that Airflow version."""
    from leadscore.settings import Settings

    setting_names = {f"LEADSCORE_{f.name.upper()}" for f in fields(Settings)}
    config = yaml.load(
        (package_dir("airflow") / "config_templates" / "config.yml").read_text(), Loader=yaml.CSafeLoader
    )
    problems = []
    for name, service in services(compose).items():
        for key in environment(service):
            if key.startswith("LEADSCORE_") and key not in setting_names:
                problems.append(f"{name}: {key} is not a LeadScore setting (settings.py)")
            if not key.startswith("AIRFLOW__"):
                continue
            section, _, option = key.removeprefix("AIRFLOW__").lower().partition("__")
            if section in PROVIDER_CONFIG_SECTIONS:
                continue
            is_cmd = option.endswith("_cmd")
            option = option.removesuffix("_cmd")
            spec = config.get(section, {}).get("options", {}).get(option)
            if spec is None:
                problems.append(f"{name}: {key} is not an option of Airflow {AIRFLOW_VERSION}")
            elif is_cmd and not spec.get("sensitive"):
                problems.append(f"{name}: {key}: Airflow reads _CMD only for sensitive options")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------------------------------
# (5) commands
# ---------------------------------------------------------------------------------------------------------------------


def test_leadscore_commands_parse_with_the_project_cli(compose: dict[str, Any]) -> None:
    from leadscore.cli import _parser

    found = 0
    for name, service in services(compose).items():
        argv = command(service)
        if argv[:3] != ["python", "-m", "leadscore"]:
            continue
        found += 1
        try:
            args = _parser().parse_args(argv[3:])
        except SystemExit as exc:
            pytest.fail(f"{name}: `{' '.join(argv)}` does not parse with leadscore.cli._parser() (exit {exc.code})")
        if argv[3:5] == ["sandbox", "serve"]:
            targets = {m["target"] for m in mounts(service)}
            assert str(args.dir) in targets, f"{name}: the sandbox folder {args.dir} is not a volume"
            published = {int(p["target"]) for p in service.get("ports", [])}
            assert {args.web_port, args.sftp_port} <= published, f"{name}: sandbox ports not published"
            assert environment(service)["PYTHONPATH"] in targets, f"{name}: include/ not mounted on PYTHONPATH"
    assert found, "no service runs `python -m leadscore ...`"


def test_airflow_commands_exist_in_airflow_cli(compose: dict[str, Any]) -> None:
    cli = airflow_cli_commands()
    expected = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler"}
    expected |= {"airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}
    for name, service in services(compose).items():
        argv = command(service)
        if not is_airflow_service(service) or argv[0] in ENTRYPOINT_PASSTHROUGH:
            continue
        if argv[:2] == ["celery", "worker"]:
            # The celery group is added by apache-airflow-providers-celery only when the executor is Celery.
            assert environment(service)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
            continue
        assert argv[0] in cli, f"{name}: `airflow {argv[0]}` is not an Airflow {AIRFLOW_VERSION} command"
        if cli[argv[0]] is not None:
            assert len(argv) > 1 and argv[1] in cli[argv[0]], f"{name}: `airflow {' '.join(argv[:2])}` does not exist"
        if name in expected:
            assert argv == [expected[name]], name


def test_init_script_is_in_the_image_and_valid_bash(compose: dict[str, Any]) -> None:
    init = services(compose)["airflow-init"]
    argv = command(init)
    assert argv[0] == "bash", argv
    copies = {dest: sources for sources, dest in copy_instructions(dockerfile_of(init))}
    assert argv[1] in copies, f"{argv[1]} is not COPYed into the image by the Dockerfile"
    script = ROOT / copies[argv[1]][0]
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert syntax.returncode == 0, syntax.stderr
    cli = airflow_cli_commands()
    for line in script.read_text().splitlines():
        words = line.split()
        if words[:1] == ["airflow"]:
            assert words[1] in cli, line
            assert cli[words[1]] is None or words[2] in cli[words[1]], line
    text = script.read_text()
    env = environment(init)
    for key in ("AIRFLOW__CORE__FERNET_KEY_CMD", "AIRFLOW__API_AUTH__JWT_SECRET_CMD"):
        secret_file = env[key].removeprefix("cat ")
        assert Path(secret_file).name in text, f"airflow-init.sh does not create {secret_file} ({key})"
    assert "airflow db migrate" in text


def test_mlflow_server_command(compose: dict[str, Any]) -> None:
    service = services(compose)["mlflow"]
    argv = command(service)
    assert argv[:4] == ["python", "-m", "mlflow", "server"], argv
    known = mlflow_server_options()
    unknown = [arg for arg in argv[4:] if arg.startswith("-") and arg not in known]
    assert not unknown, f"options that `mlflow server` does not have: {unknown}"
    assert "--serve-artifacts" in argv
    destination = argv[argv.index("--artifacts-destination") + 1]
    assert destination in {m["target"] for m in mounts(service) if m["type"] == "volume"}
    port = argv[argv.index("--port") + 1]
    assert [int(p["target"]) for p in service["ports"]] == [int(port)]
    allowed = argv[argv.index("--allowed-hosts") + 1].split(",")
    assert {"mlflow:*", "localhost:*", "127.0.0.1:*"} <= set(allowed), "the DAGs and the browser must be allowed"


def test_mlflow_options_reader_sees_real_options() -> None:
    options = mlflow_server_options()
    assert {"--backend-store-uri", "--host", "--port", "--serve-artifacts", "--no-serve-artifacts"} <= options
    assert "--no-such-option" not in options


# ---------------------------------------------------------------------------------------------------------------------
# (6) ports, (7) versions, (8) the celery profile
# ---------------------------------------------------------------------------------------------------------------------


def test_host_ports_are_bound_to_localhost(compose: dict[str, Any]) -> None:
    bound = []
    for name, service in services(compose).items():
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                host_ip = port.get("host_ip")
            else:
                parts = str(port).rsplit(":", 2)
                host_ip = parts[0] if len(parts) == 3 else None
            assert host_ip == "127.0.0.1", f"{name}: port {port} is published on all interfaces"
            bound.append(name)
    assert {"airflow-apiserver", "mlflow", "sandbox"} <= set(bound)
    assert services(compose)["airflow-apiserver"]["ports"][0]["target"] == 8080


def test_airflow_image_and_requirements_agree(compose: dict[str, Any]) -> None:
    pins = re.findall(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), flags=re.MULTILINE)
    assert pins == [AIRFLOW_VERSION], f"requirements.txt pins apache-airflow {pins}"
    for name, service in services(compose).items():
        if "build" in service:
            bases = [
                args for instruction, args in dockerfile_instructions(dockerfile_of(service)) if instruction == "FROM"
            ]
            assert bases == [f"apache/airflow:{AIRFLOW_VERSION}-python3.11"], f"{name}: FROM {bases}"
            assert service["image"].endswith(f":{AIRFLOW_VERSION}"), f"{name}: image tag {service['image']}"
        elif str(service.get("image", "")).startswith("apache/airflow"):
            assert service["image"].startswith(f"apache/airflow:{AIRFLOW_VERSION}"), name
    install = [args for instruction, args in dockerfile_instructions(dockerfile_of(services(compose)["airflow-init"]))]
    assert any("uv pip install" in args and "requirements.txt" in args for args in install), (
        "requirements not installed"
    )


def merge_override(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``docker compose -f base -f override``'s merge for what the override uses: services' volumes by target."""
    merged = copy.deepcopy(base)
    for name, extra in override.get("services", {}).items():
        service = merged["services"][name]  # an override never adds a service here
        by_target = {m["target"]: item for m, item in zip(mounts(service), service.get("volumes") or [], strict=True)}
        for m, item in zip(mounts(extra), extra.get("volumes") or [], strict=True):
            by_target[m["target"]] = item
        service["volumes"] = list(by_target.values())
        for key, value in extra.items():
            if key != "volumes":
                service[key] = value
    return merged


def test_sandbox_runs_only_under_its_profile_with_its_volume(
    compose: dict[str, Any], schema: dict[str, Any], env_example: dict[str, str]
) -> None:
    from leadscore.settings import Settings

    assert services(compose)["sandbox"].get("profiles") == ["sandbox"]
    for name, service in services(compose).items():
        if name != "sandbox":
            assert "sandbox" not in (service.get("depends_on") or {}), f"{name} depends on the sandbox"
    override = interpolate(yaml.safe_load(SANDBOX_OVERRIDE.read_text()), env_example, set())
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(override)]
    assert not errors, errors
    merged = merge_override(compose, override)
    runs_tasks = {"airflow-scheduler", "airflow-worker"}
    assert set(override["services"]) == runs_tasks
    for name in runs_tasks:
        service = merged["services"][name]
        home = environment(service)["LEADSCORE_HOME"]
        target = {m["target"]: m for m in mounts(service)}.get(str(Settings(home=Path(home)).sandbox_dir))
        assert target and target["source"] == "sandbox-data" and target["read_only"], name
        assert {m["target"] for m in mounts(compose["services"][name])} < {m["target"] for m in mounts(service)}
    text = ENV_EXAMPLE.read_text()
    assert (
        "# COMPOSE_PROFILES=sandbox" in text and f"# COMPOSE_FILE={COMPOSE_FILE.name}:{SANDBOX_OVERRIDE.name}" in text
    )


def test_celery_profile(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    for name in CELERY_SERVICES:
        assert all_services[name].get("profiles") == ["celery"], f"{name} must carry profiles: [celery]"
    for name, service in all_services.items():
        if name in CELERY_SERVICES or name == "sandbox":
            continue
        assert not service.get("profiles"), f"{name} belongs to the default stack"
        for dependency, condition in (service.get("depends_on") or {}).items():
            if dependency in CELERY_SERVICES:
                assert condition.get("required") is False, (
                    f"{name} requires {dependency}, which only the profile starts"
                )
    worker = environment(all_services["airflow-worker"])
    assert worker["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert worker["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert environment(all_services["airflow-scheduler"])["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_healthchecked_dependencies(compose: dict[str, Any]) -> None:
    """Every `service_healthy` dependency has a healthcheck, and every dependency names a service."""
    all_services = services(compose)
    for name, service in all_services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in all_services, f"{name} depends on unknown service {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in all_services[dependency], f"{dependency} has no healthcheck ({name} waits)"
    assert all_services["postgres"]["image"] == "postgres:16"
