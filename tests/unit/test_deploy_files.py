"""The deployment files parse, and every command and setting they name exists.

There is no container engine here, so these files cannot be run in CI; what can drift
silently — a renamed command, a setting that no longer exists, a probe on a missing route —
is checked instead.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from services.cli import app as cli
from yijian.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
COMPOSE = ROOT / "deploy" / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
ENV_NAMES = {f"YIJIAN_{name.upper()}" for name in Settings.model_fields} | {"PORT"}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def command_exists(argv: list[str]) -> bool:
    """Whether ``yijian ARGV…`` names a real command (a leaf, not a group) of the CLI."""
    node: object = typer.main.get_command(cli)
    for word in argv:
        commands: dict[str, object] | None = getattr(node, "commands", None)
        if commands is None or word.startswith("-"):
            break
        if word not in commands:
            return False
        node = commands[word]
    return getattr(node, "commands", None) is None


def yijian_commands(text: str) -> list[list[str]]:
    """Every ``yijian …`` invocation in a shell string."""
    found = []
    for part in re.split(r"&&|;|\|\|", text):
        words = shlex.split(part)
        if words and words[0] == "yijian":
            found.append(words[1:])
    return found


def test_the_command_checker_can_fail() -> None:
    assert command_exists(["serve", "intake", "--port", "8000"])
    assert command_exists(["db", "upgrade", "all"])
    assert not command_exists(["serve-all"])
    assert not command_exists(["db"])


@pytest.mark.parametrize("path", KUBERNETES, ids=lambda p: p.name)
def test_kubernetes_manifests_parse_and_name_real_settings(path: Path) -> None:
    for doc in documents(path):
        assert doc.get("kind"), f"{path.name}: a document without a kind"
        if doc["kind"] == "ConfigMap":
            assert set(doc["data"]) <= ENV_NAMES, set(doc["data"]) - ENV_NAMES
        for container in _containers(doc):
            for variable in container.get("env", []):
                assert variable["name"] in ENV_NAMES, variable["name"]
            argv = container.get("args") or []
            command = container.get("command") or []
            if argv:
                assert command_exists(argv), argv
            for script in command[2:] if command[:2] == ["sh", "-c"] else []:
                for found in yijian_commands(script):
                    assert command_exists(found), found


def test_deployments_have_probes_limits_and_run_as_non_root() -> None:
    deployments = [d for p in KUBERNETES for d in documents(p) if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {
        "intake",
        "routing",
        "escalation",
        "notify",
        "gateway",
    }
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["resources"]["limits"]["memory"]
            secret_refs = [
                v["valueFrom"]["secretKeyRef"]["name"]
                for v in container.get("env", [])
                if "secretKeyRef" in v.get("valueFrom", {})
            ]
            assert set(secret_refs) <= {"yijian-secrets"}


def test_kustomization_lists_every_manifest() -> None:
    listed = documents(ROOT / "deploy" / "kubernetes" / "kustomization.yaml")[0]["resources"]
    present = {p.name for p in KUBERNETES} - {"kustomization.yaml"}
    assert set(listed) == present


def test_compose_names_real_commands_and_settings() -> None:
    compose = documents(COMPOSE)[0]
    services = compose["services"]
    assert {
        "postgres",
        "kafka",
        "setup",
        "intake",
        "routing",
        "escalation",
        "notify",
        "gateway",
    } <= set(services)
    for name, service in services.items():
        if service.get("image", "").startswith("yijian"):
            for variable in service.get("environment", {}):
                assert variable in ENV_NAMES, (name, variable)
            if "command" in service:
                assert command_exists(service["command"]), (name, service["command"])
            entrypoint = service.get("entrypoint")
            if entrypoint and entrypoint[:2] == ["sh", "-c"]:
                for found in yijian_commands(entrypoint[2]):
                    assert command_exists(found), (name, found)
    for mount in services["postgres"]["volumes"]:
        source = mount.split(":")[0]
        if source.startswith("./"):
            assert (COMPOSE.parent / source).exists(), source


def test_dockerfile_copies_what_exists_and_runs_as_a_user() -> None:
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    for line in lines:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in shlex.split(line)[1:-1]:
                if not source.startswith("--"):
                    assert (ROOT / source).exists(), source
    user = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user, "the image must name a user"
    assert not user[-1].startswith(("0", "root"))
    assert any(line.startswith('ENTRYPOINT ["yijian"]') for line in lines)
    cmd = next(line for line in lines if line.startswith("CMD "))
    assert command_exists(yaml.safe_load(cmd.removeprefix("CMD ")))


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    template = spec.get("template", {}).get("spec", {})
    return list(template.get("containers", []))
