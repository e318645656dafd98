"""``rag-backend`` (entrypoints.cli) with the embedder patches of patched_server applied,
to measure them on ingestion: ``python -m bench.experiments.patched_cli [--embed-base64]
[--embed-slots N] -- ingest PATH``."""

from __future__ import annotations

import argparse
import sys

from bench.experiments.patched_server import patch_embedder


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--embed-slots", type=int, default=None)
    p.add_argument("--embed-base64", action="store_true")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    args = p.parse_args()
    patch_embedder(args.embed_slots, args.embed_base64)
    from entrypoints.cli import main as cli_main

    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main())
