"""The project's own docs (`make run`) are served only until the user ingests theirs."""

from __future__ import annotations

from pathlib import Path

from entrypoints.container import DEMO_SOURCE, in_memory_container, ingest_demo


async def test_demo_docs_leave_when_the_users_docs_arrive(tmp_path: Path) -> None:
    demo, mine = tmp_path / "demo", tmp_path / "mine"
    demo.mkdir()
    mine.mkdir()
    (demo / "readme.md").write_text("# Demo\n\nThe backend routes follow Docusaurus folders.\n")
    (mine / "nodes.md").write_text("# Nodes\n\nA node is an executable that uses ROS 2.\n")
    container = await in_memory_container()
    assert await ingest_demo(container, [demo])
    assert await container.index.chunk_ids_by_document(DEMO_SOURCE)

    report = await container.ingest_paths([mine])

    assert report.documents_added == 1
    assert not await container.index.chunk_ids_by_document(DEMO_SOURCE)
    answer = await container.answerer.answer("What are the backend routes?")
    assert all(c.route != "/demo/readme" for c in answer.citations)
    assert not await ingest_demo(container, [demo])  # the user's docs are there: no demo
    assert not await container.index.chunk_ids_by_document(DEMO_SOURCE)
