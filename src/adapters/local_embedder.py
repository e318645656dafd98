"""The Embedder port on a local ONNX model, through fastembed (the ``local`` extra).

No key and no server: the model runs in-process on onnxruntime (no torch). It is
one of fastembed's models, downloaded once into a cache folder, or a folder of ONNX
files given explicitly (nothing is downloaded then).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.settings import ConfigurationError
from rag_core.errors import DependencyUnavailable

if TYPE_CHECKING:
    from fastembed import TextEmbedding

log = logging.getLogger(__name__)

DEPENDENCY = "embedder"
INSTALL_HINT = "EMBEDDINGS=local needs `pip install rag-backend[local]` (fastembed)"
# Where a model folder usually keeps its ONNX file, most specific first.
MODEL_FILES = ("model.onnx", "onnx/model.onnx", "model_optimized.onnx", "model_quantized.onnx")

Vector = tuple[float, ...]


def _fastembed() -> Any:
    """The fastembed module, imported on demand: it is an optional extra (and takes
    half a second to import)."""
    try:
        import fastembed
    except ImportError as exc:
        raise ConfigurationError(INSTALL_HINT) from exc
    return fastembed


class FastEmbedEmbedder:
    """Implements :class:`rag_core.ports.Embedder` with a fastembed ``TextEmbedding``.

    ``model`` is one of fastembed's models (``TextEmbedding.list_supported_models()``),
    downloaded into ``cache_dir`` the first time it is loaded; with ``model_path``, a
    folder holding the ONNX model and its tokenizer files, loaded from there and never
    downloaded. In that folder a model fastembed knows is described by fastembed (its
    pooling, vector length and model file); any other name is registered as a custom
    model: mean pooling (CLS when ``1_Pooling/config.json`` says so), normalised vectors,
    the length from ``config.json`` (``hidden_size``) and the first of MODEL_FILES found.

    ``dimension`` is known on construction, without loading the model. The model loads
    on the first ``embed`` (or ``await load()``, which a composition root calls to fail
    at start-up rather than on the first query). A missing extra, an unknown model or a
    folder without the files raises ConfigurationError on construction.

    Inference is blocking CPU work: it runs on one worker thread owned by the
    embedder, never on the event loop, one batch of at most ``batch_size`` texts at a
    time (a query waits for at most one batch of an ingest running at once). Texts are
    cut to ``max_chars`` (the tokenizer truncates to the model's context anyway) and
    an empty text is embedded as one space. A load or inference failure raises
    DependencyUnavailable("embedder", <error class>); a failed load is tried again by
    the next call.
    """

    def __init__(
        self,
        model: str,
        *,
        cache_dir: Path,
        model_path: Path | None = None,
        batch_size: int = 32,
        max_chars: int = 8000,
        threads: int | None = None,
    ) -> None:
        if min(batch_size, max_chars) < 1:
            raise ValueError("batch_size and max_chars must be at least 1")
        fastembed = _fastembed()
        self._model = model
        self._cache_dir = cache_dir
        self._model_path = model_path
        self._batch_size = batch_size
        self._max_chars = max_chars
        self._threads = threads
        self._dimension = _describe(fastembed.TextEmbedding, model, model_path)
        self._engine: TextEmbedding | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastembed")

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    async def load(self) -> None:
        """Load (and, without ``model_path``, download) the model now."""
        await self._run(self._load)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        cut = [text[: self._max_chars] or " " for text in texts]
        vectors: list[Vector] = []
        for start in range(0, len(cut), self._batch_size):
            vectors.extend(
                await self._run(self._embed_batch, cut[start : start + self._batch_size])
            )
        return vectors

    async def close(self) -> None:
        """Stop the worker thread once the batch it runs (if any) is done."""
        await asyncio.to_thread(self._worker.shutdown, wait=True, cancel_futures=True)

    async def _run(self, work: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._worker, work, *args)

    def _load(self) -> TextEmbedding:
        if self._engine is None:
            fastembed = _fastembed()
            try:
                self._engine = fastembed.TextEmbedding(
                    model_name=self._model,
                    cache_dir=str(self._cache_dir),
                    threads=self._threads,
                    specific_model_path=str(self._model_path) if self._model_path else None,
                )
            except Exception as exc:
                log.warning("local embedding model %s did not load: %s", self._model, exc)
                raise DependencyUnavailable(
                    DEPENDENCY, f"{type(exc).__name__} while loading {self._model}"
                ) from exc
        return self._engine

    def _embed_batch(self, batch: list[str]) -> list[Vector]:
        engine = self._load()
        try:
            arrays = list(engine.embed(batch, batch_size=len(batch)))
        except Exception as exc:
            raise DependencyUnavailable(DEPENDENCY, type(exc).__name__) from exc
        if len(arrays) != len(batch):
            raise DependencyUnavailable(
                DEPENDENCY, f"{len(arrays)} embeddings returned for {len(batch)} inputs"
            )
        vectors = [tuple(array.tolist()) for array in arrays]
        for vector in vectors:
            if len(vector) != self._dimension:
                raise DependencyUnavailable(
                    DEPENDENCY,
                    f"model {self._model!r} returned {len(vector)}-dimensional vectors, "
                    f"{self._dimension} expected",
                )
        return vectors


def _describe(text_embedding: Any, model: str, model_path: Path | None) -> int:
    """The model's vector length, registering a custom model for an unknown name in
    ``model_path``; ConfigurationError when it cannot be loaded as configured."""
    described = {m["model"].lower(): m for m in text_embedding.list_supported_models()}
    known = described.get(model.lower())
    if model_path is None:
        if known is None:
            raise ConfigurationError(
                f"LOCAL_EMBEDDING_MODEL={model!r} is not one of fastembed's models; choose one "
                "of them or set LOCAL_EMBEDDING_PATH to a folder with its ONNX files"
            )
        return int(known["dim"])
    if not model_path.is_dir():
        raise ConfigurationError(f"LOCAL_EMBEDDING_PATH={model_path} is not a folder")
    missing = [
        f for f in ("tokenizer.json", "tokenizer_config.json") if not (model_path / f).is_file()
    ]
    if missing:
        raise ConfigurationError(f"LOCAL_EMBEDDING_PATH={model_path} has no {', '.join(missing)}")
    if known is not None:
        if not (model_path / known["model_file"]).is_file():
            raise ConfigurationError(
                f"LOCAL_EMBEDDING_PATH={model_path} has no {known['model_file']}, the file "
                f"fastembed loads for {model}"
            )
        return int(known["dim"])
    return _register_custom(text_embedding, model, model_path)


def _register_custom(text_embedding: Any, model: str, model_path: Path) -> int:
    from fastembed.common.model_description import ModelSource, PoolingType

    model_file = next((f for f in MODEL_FILES if (model_path / f).is_file()), None)
    if model_file is None:
        raise ConfigurationError(
            f"LOCAL_EMBEDDING_PATH={model_path} has none of {', '.join(MODEL_FILES)}"
        )
    try:
        config = json.loads((model_path / "config.json").read_text())
        dimension = int(config["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"LOCAL_EMBEDDING_PATH={model_path}: the vector length of {model!r} is read from "
            f"config.json `hidden_size` ({type(exc).__name__})"
        ) from exc
    pooling = PoolingType.MEAN
    pooling_config = model_path / "1_Pooling" / "config.json"
    if pooling_config.is_file() and json.loads(pooling_config.read_text()).get(
        "pooling_mode_cls_token"
    ):
        pooling = PoolingType.CLS
    # The registry is process-wide: a second container with the same model reuses it.
    text_embedding.add_custom_model(
        model=model,
        pooling=pooling,
        normalization=True,
        sources=ModelSource(hf=model),  # never fetched: the model loads from model_path
        dim=dimension,
        model_file=model_file,
    )
    return dimension
