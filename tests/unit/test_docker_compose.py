"""docker-compose.yml and the Dockerfile agree with the code: commands, settings, services.

Docker does not run here, so this reads the files and checks them against the real CLI and the
real settings: a renamed command or setting fails here, not in somebody's staging.
"""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import typer.core
import typer.main
import yaml

from core.settings import PREFIX, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

REQUIRED_SERVICES = {"redis", "postgres", "mailpit", "migrate", "worker", "beat"}
NEEDS_HEALTHCHECK = {"redis", "postgres", "worker"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}

Service = dict[str, Any]


@pytest.fixture(scope="module")
def services() -> dict[str, Service]:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(compose, dict), "docker-compose.yml is not a mapping"
    found = compose.get("services")
    assert isinstance(found, dict) and found, "docker-compose.yml has no services"
    return found


@pytest.fixture(scope="module")
def app_services(services: dict[str, Service]) -> dict[str, Service]:
    """The services built from our Dockerfile, i.e. the ones running samverkan."""
    built = {name: service for name, service in services.items() if "build" in service}
    assert built, "no service is built from the Dockerfile"
    return built


@pytest.fixture(scope="module")
def cli_commands() -> set[str]:
    # samverkan.cli is imported here, not at the top: without it only the tests that need the
    # command names fail, and the rest of the file still checks the compose file.
    app = importlib.import_module("samverkan.cli").app
    assert isinstance(app, typer.Typer), "samverkan.cli:app is not a Typer app"
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup), "samverkan.cli:app has a single command"
    return set(group.commands)


def words(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def environment(service: Service) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: Service) -> dict[str, str]:
    """Target -> condition; the short list form means service_started."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def replicas(service: Service) -> int:
    return int((service.get("deploy") or {}).get("replicas", 1))


def dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    return lines


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in dockerfile_lines():
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def test_required_services_exist(services: dict[str, Service]) -> None:
    assert set(services) >= REQUIRED_SERVICES, f"missing: {REQUIRED_SERVICES - set(services)}"
    assert services["redis"]["image"].startswith("redis:7")
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["mailpit"]["image"].startswith("axllent/mailpit")


def test_the_app_services_are_built_from_our_dockerfile(
    app_services: dict[str, Service],
) -> None:
    assert {"migrate", "worker", "beat"} <= set(app_services)
    assert DOCKERFILE.is_file()
    for name, service in app_services.items():
        build = service["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert (ROOT / context).resolve() == ROOT, f"{name} is built from {context}"


def test_every_app_command_is_a_samverkan_command(
    app_services: dict[str, Service], cli_commands: set[str]
) -> None:
    for name, service in app_services.items():
        assert "command" in service, f"{name} has no command"
        argv = words(service["command"])
        assert argv[0] == "samverkan", f"{name} runs {argv[0]!r}, not samverkan"
        assert len(argv) > 1, f"{name} runs samverkan without a command"
        assert argv[1] in cli_commands, f"{name}: samverkan has no command {argv[1]!r}"


def test_samverkan_healthchecks_name_real_commands(
    services: dict[str, Service], cli_commands: set[str]
) -> None:
    for name, service in services.items():
        test = (service.get("healthcheck") or {}).get("test")
        if not isinstance(test, list) or test[0] != "CMD" or test[1] != "samverkan":
            continue
        assert test[2] in cli_commands, f"{name}'s healthcheck: no command {test[2]!r}"


def test_there_is_exactly_one_beat(services: dict[str, Service]) -> None:
    beats = [
        name
        for name, service in services.items()
        if "command" in service and words(service["command"])[:2] == ["samverkan", "beat"]
    ]
    assert beats == ["beat"], f"services running the beat: {beats}"
    assert replicas(services["beat"]) == 1
    assert "scale" not in services["beat"]


def test_the_worker_scales(services: dict[str, Service]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker, "a container_name prevents --scale worker=N"
    assert replicas(worker) >= 2


def test_every_samverkan_variable_is_a_setting(app_services: dict[str, Service]) -> None:
    image_env = dockerfile_env()
    for name, service in app_services.items():
        env = {**image_env, **environment(service)}
        ours = {key: value for key, value in env.items() if key.startswith(PREFIX)}
        # Raises SettingsError naming any unknown or malformed variable; connects to nothing.
        settings = load_settings(ours)
        assert settings.database_url.startswith("postgresql://"), name
        assert settings.broker_url.startswith("redis://"), name
        assert settings.smtp is not None, name


def test_the_urls_point_at_the_compose_services(
    services: dict[str, Service], app_services: dict[str, Service]
) -> None:
    postgres = environment(services["postgres"])
    mailpit_ports = {str(port).split(":")[-1] for port in services["mailpit"].get("ports", [])}
    for name, service in app_services.items():
        env = environment(service)
        database = urlsplit(env["SAMVERKAN_DATABASE_URL"])
        assert database.hostname == "postgres", name
        assert database.username == postgres["POSTGRES_USER"], name
        assert database.password == postgres["POSTGRES_PASSWORD"], name
        assert database.path.lstrip("/") == postgres["POSTGRES_DB"], name
        assert urlsplit(env["SAMVERKAN_BROKER_URL"]).hostname == "redis", name
        smtp = urlsplit(env["SAMVERKAN_SMTP_URL"])
        assert smtp.hostname == "mailpit", name
        assert str(smtp.port) in mailpit_ports, name


def test_every_dependency_exists(services: dict[str, Service]) -> None:
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target!r}"
            assert condition in CONDITIONS, f"{name} -> {target}: unknown {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"


def test_the_app_waits_for_its_services(app_services: dict[str, Service]) -> None:
    for name in ("worker", "beat"):
        deps = depends_on(app_services[name])
        assert deps.get("redis") == "service_healthy", name
        assert deps.get("postgres") == "service_healthy", name
        assert deps.get("migrate") == "service_completed_successfully", name
    assert depends_on(app_services["migrate"]).get("postgres") == "service_healthy"
    assert app_services["migrate"].get("restart", "no") == "no"


def test_healthchecks_are_present(services: dict[str, Service]) -> None:
    for name in NEEDS_HEALTHCHECK:
        test = (services[name].get("healthcheck") or {}).get("test")
        assert test, f"{name} has no healthcheck"


def test_the_dockerfile() -> None:
    lines = dockerfile_lines()
    instructions = [line.split(" ", 1) for line in lines]
    assert instructions[0] == ["FROM", "python:3.11-slim"]
    assert any(i[0] == "RUN" and "pip install ." in i[1] for i in instructions)
    users = [i[1] for i in instructions if i[0] == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    for keyword, rest in instructions:
        if keyword == "COPY" and not rest.startswith("--from"):
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), f"the Dockerfile copies missing {source}"
