"""Re-embedding survives being cut short: the chunks wait in DATA_DIR until written."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from adapters.settings import Settings
from entrypoints.bootstrap import build_container
from entrypoints.cli import main
from entrypoints.reindex import backup_path
from rag_core.markdown import parse_document


def settings(data: Path) -> Settings:
    return Settings(_env_file=None, data_dir=data, openai_api_key=None, embeddings="none")


async def test_an_interrupted_re_embedding_resumes_from_the_kept_chunks(tmp_path: Path) -> None:
    data = tmp_path / "data"
    container = await build_container(settings(data))
    try:
        await container.ingest([parse_document("docs/a.md", "# A\n\nThe kitten naps.\n")])
        [chunk] = await container.index.chunks()
        await container.index.recreate(None)  # as if the process died right after the drop
    finally:
        await container.aclose()
    backup_path(data).write_text(json.dumps(attrs.asdict(chunk)) + "\n")

    container = await build_container(settings(data))
    try:
        assert await container.index.chunks() == [chunk]
        assert (await container.retriever.search("kitten")).passages[0].chunk == chunk
    finally:
        await container.aclose()
    assert not backup_path(data).exists()


def test_reindex_command_re_embeds_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nThe kitten naps on the sofa.\n")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["ingest", str(docs)]) == 0
    assert main(["reindex"]) == 0
    assert "re-embedded 1 chunks" in capsys.readouterr().out
