"""Settings and the production guard, through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.openai.configured import embedding_dimension
from adapters.settings import Settings

SECRET = "sk-this-value-must-never-be-printed"


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("OPENAI", "QDRANT", "NEON", "DATABASE", "BETTER_AUTH", "SPACE", "APP_ENV", "ADMIN")
        )
    }
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_space_without_secrets_refuses_to_start_naming_each_variable(tmp_path: Path) -> None:
    result = run_cli(
        "serve",
        env={"SPACE_ID": "x", "OPENAI_API_KEY": SECRET, "DATA_DIR": str(tmp_path)},
        cwd=tmp_path,
    )
    assert result.returncode != 0
    for name in ("QDRANT_URL", "NEON_API_KEY", "BETTER_AUTH_SECRET"):
        assert name in result.stderr
    assert "OPENAI_API_KEY" not in result.stderr  # it was given
    assert SECRET not in result.stdout + result.stderr
    assert not (tmp_path / "qdrant-edge").exists()  # no embedded fallback was opened


def test_check_config_names_adapters_and_never_secrets(tmp_path: Path) -> None:
    result = run_cli(
        "check-config",
        env={"OPENAI_API_KEY": SECRET, "DATABASE_URL": f"postgresql://u:{SECRET}@db.example/x"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "database: postgresql" in result.stdout
    assert "vector_index: qdrant edge (embedded)" in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_original_variable_names_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEON_API_KEY", "postgres://u:p@h/db")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-test")
    s = Settings(_env_file=None)
    assert s.database_url is not None and s.database_url.get_secret_value() == "postgres://u:p@h/db"
    assert s.openai_chat_model == "gpt-test"
    assert "p@h" not in repr(s)


def test_space_id_means_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPACE_ID", "me/book")
    assert Settings(_env_file=None).production


@pytest.mark.parametrize(
    ("model", "configured", "expected"),
    [
        ("text-embedding-3-small", None, (1536, False)),
        ("text-embedding-3-small", 1536, (1536, False)),
        ("text-embedding-3-small", 512, (512, True)),  # asked of the API: a smaller index
        ("text-embedding-3-large", 256, (256, True)),
        ("nomic-embed-text", None, (None, False)),  # asked of the model at start-up
        ("nomic-embed-text", 768, (768, False)),  # only says what the model returns
    ],
)
def test_the_embedding_dimension_is_expected_or_requested(
    model: str, configured: int | None, expected: tuple[int | None, bool]
) -> None:
    assert embedding_dimension(model, configured) == expected
