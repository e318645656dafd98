"""The README's library quickstart is executed, so it cannot rot."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_library_quickstart_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has no python example"
    # A small textbook in the real one's shape: objectives, code, lists, review questions.
    shutil.copytree(ROOT / "tests" / "fixtures" / "textbook" / "docs", tmp_path / "docs")
    result = subprocess.run(
        [sys.executable, "-c", blocks[0]], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    answer, *sources = result.stdout.splitlines()
    assert "exchanging messages over named channels called topics" in answer, answer
    assert "?" not in answer and "you will be able to" not in answer, answer
    assert sources == ["1 Nodes and Topics /docs/week1/nodes-and-topics"], result.stdout


def test_readme_is_a_space_card() -> None:
    front = (ROOT / "README.md").read_text().split("---\n")[1]
    assert "sdk: docker" in front and "app_port: 7860" in front
