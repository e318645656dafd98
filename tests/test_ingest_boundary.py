"""Issue 14, item 1, end to end in one process: a folder with links out of it is
ingested (as `rag-backend ingest`, DOCS_PATH and the hand-over all read it) and
nothing outside it reaches the index or an answer."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from entrypoints.container import in_memory_container

SECRET = "ADMIN_API_KEY=s3cr3t-value-that-must-not-leak"


async def test_links_out_of_the_folder_leak_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    docs = tmp_path / "d"
    docs.mkdir()
    (docs / "ok.md").write_text("# ok\n\nNodes talk to each other over topics.\n")
    (tmp_path / "env").write_text(f"NEON_API_KEY=x\n{SECRET}\nDATABASE_URL=postgresql://u:p@h/db\n")
    (docs / "env.md").symlink_to(tmp_path / "env")
    (docs / "proc.md").symlink_to("/proc/self/environ")
    (docs / "passwd.md").symlink_to("/etc/passwd")
    container = await in_memory_container()
    try:
        with caplog.at_level(logging.WARNING, logger="adapters.filesystem"):
            report = await container.ingest_paths([docs])
        assert report.documents_added == 1
        assert set(await container.index.chunk_ids_by_document()) == {"d/ok.md"}
        turn = await container.chat.ask("NEON API KEY postgresql ADMIN_API_KEY root")
        assert "s3cr3t" not in turn.answer.text
        assert all("s3cr3t" not in c.snippet for c in turn.answer.citations)
    finally:
        await container.aclose()
    assert all(f"d/{name}" in caplog.text for name in ["env.md", "proc.md", "passwd.md"])
