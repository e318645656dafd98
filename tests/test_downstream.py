"""Acceptance for the testing kit: a separate project (tests/downstream, with its own
pyproject and its own ConversationStore adapter) installs this project's wheel into a
fresh venv and runs the shipped contract suites against its adapter; they pass.

The wheel is built from a copy of ``src`` (a stale ``build/`` cannot leak into it) and
installed with ``--no-deps --no-index``; the new venv borrows this venv's
site-packages for the dependencies (attrs, pytest, ...) through a ``.pth`` line,
which puts the directory on ``sys.path`` without running the editable install's own
``.pth`` there: ``rag_core`` comes from the wheel, as a library user gets it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOWNSTREAM = ROOT / "tests" / "downstream"


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(tmp: Path) -> Path:
    source = tmp / "source"
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", ".", cwd=source
    )
    (wheel,) = (tmp / "dist").glob("rag_backend-*.whl")
    return wheel


def fresh_venv(tmp: Path, wheel: Path) -> Path:
    home = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(home)
    python = home / "bin" / "python"
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        wheel,
        cwd=tmp,
    )
    site = Path(
        run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp
        ).strip()
    )
    (site / "zz_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.mark.wheel
@pytest.mark.timeout(300)
def test_a_downstream_project_runs_the_shipped_contracts_against_its_adapter(
    tmp_path: Path,
) -> None:
    python = fresh_venv(tmp_path, build_wheel(tmp_path))
    project = tmp_path / "downstream"
    shutil.copytree(DOWNSTREAM, project, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}

    where = run(
        python,
        "-c",
        "import rag_core.testing, adapters.memory; print(rag_core.testing.__file__)",
        cwd=project,
        env=env,
    )
    assert Path(where.strip()).is_relative_to(tmp_path / "venv"), where

    out = run(python, "-m", "pytest", "-q", "-rA", cwd=project, env=env)
    assert (
        "PASSED tests/test_contracts.py::TestDictConversationStore::test_sources_round_trip_exactly"
        in out
    )
    assert (
        "PASSED tests/test_contracts.py::TestShippedInMemoryIndex::test_hybrid_fuses_a_dense_only_match"
        in out
    )
    assert "failed" not in out and "error" not in out, out
