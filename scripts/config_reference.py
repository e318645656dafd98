"""Generate docs/configuration.md from the Settings model (src/adapters/settings.py).

    .venv/bin/python scripts/config_reference.py           # rewrite docs/configuration.md
    .venv/bin/python scripts/config_reference.py --check   # exit 1 when it is out of date

Everything comes from the model: the variable names (aliases included), the type and its
bounds, the default, the description (``Field(description=...)``), secrets (``SecretStr``),
which variables production mode requires (``Settings.missing_for_production()``) and the
example (``Field(examples=[...])``; a few fallbacks below until the model carries them).
The values the Docker image sets (``ENV`` in the Dockerfile) are listed too.
tests/test_deployment.py regenerates the page in memory and fails when it differs.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "configuration.md"
DOCKERFILE = ROOT / "Dockerfile"
REGENERATE = ".venv/bin/python scripts/config_reference.py"

sys.path.insert(0, str(ROOT / "src"))
from adapters.settings import Settings, env_names, variable_names  # noqa: E402

# Used only when the field has no ``examples``; secrets get a shape, never a value.
FALLBACK_EXAMPLES: dict[str, str] = {
    "APP_ENV": "production",
    "SPACE_ID": "your-name/rag-backend",
    "HOST": "0.0.0.0",
    "PORT": "7860",
    "DATA_DIR": "/data/rag-backend",
    "DOCS_PATH": "docs,blog",
    "LOG_LEVEL": "DEBUG",
    "OPENAI_API_KEY": "sk-...",
    "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1",
    "OPENAI_CHAT_MODEL": "gpt-4o-mini",
    "OPENAI_EMBEDDING_MODEL": "text-embedding-3-small",
    "OPENAI_EMBEDDING_DIMENSION": "768",
    "QDRANT_URL": "https://xyz.eu-central-1-0.aws.cloud.qdrant.io:6333",
    "QDRANT_API_KEY": "(from the Qdrant Cloud console)",
    "QDRANT_COLLECTION_NAME": "physical-ai-book",
    "DATABASE_URL": "postgresql://user:password@ep-x-pooler.region.aws.neon.tech/db?sslmode=require",
    "BETTER_AUTH_SECRET": "(32+ random bytes, e.g. `openssl rand -hex 32`)",
    "BETTER_AUTH_URL": "https://your-name-rag-backend.hf.space",
    "ADMIN_API_KEY": "(random, e.g. `openssl rand -hex 24`)",
    "CORS_ALLOWED_ORIGINS": "https://your-name.github.io,http://localhost:3000",
    "CORS_ORIGIN_REGEX": r"https://.*\.vercel\.app",
}


def production_labels() -> list[str]:
    """What production mode reports missing when nothing is set, e.g. `A (or B)`."""
    return Settings.model_construct(app_env="production").missing_for_production()


def production_required() -> set[str]:
    """Variable names named by those labels."""
    return set(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", " ".join(production_labels())))


def _unoptional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _bounds(field: FieldInfo) -> str:
    symbols = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    parts = []
    for item in field.metadata:
        for attr, symbol in symbols.items():
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def type_text(field: FieldInfo) -> str:
    annotation, _ = _unoptional(field.annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(f"`{v}`" for v in typing.get_args(annotation))
    names = {
        SecretStr: "secret",
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "text",
        Path: "path",
    }
    text = names.get(annotation, getattr(annotation, "__name__", str(annotation)))
    bounds = _bounds(field)
    return f"{text} {bounds}" if bounds else text


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def example_text(names: list[str], field: FieldInfo) -> str:
    if field.examples:
        return f"`{field.examples[0]}`"
    for name in names:
        if name in FALLBACK_EXAMPLES:
            value = FALLBACK_EXAMPLES[name]
            return value if value.startswith("(") else f"`{value}`"
    return "—"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def image_env(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """``ENV`` values the Dockerfile's final stage sets (key=value form)."""
    if not dockerfile.exists():
        return {}
    text = dockerfile.read_text().replace("\\\n", " ")
    stages = re.split(r"^FROM\s", text, flags=re.M)
    found: dict[str, str] = {}
    for line in stages[-1].splitlines():
        if line.strip().upper().startswith("ENV "):
            for key, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", line):
                found[key] = value
    return found


def render() -> str:
    required = production_required()
    rows = []
    secrets = []
    for name, field in Settings.model_fields.items():
        names = env_names(name, field)
        annotation, _ = _unoptional(field.annotation)
        secret = annotation is SecretStr
        variable = " or ".join(f"`{n}`" for n in names)
        if secret:
            secrets.append(names[0])
            variable += " (secret)"
        needed = "**yes**" if required & set(names) else "no"
        rows.append(
            f"| {variable} | {needed} | {default_text(field)} | {_cell(type_text(field))} "
            f"| {_cell(field.description or '')} | {_cell(example_text(names, field))} |"
        )
    known = variable_names()
    image = {k: v for k, v in image_env().items() if k in known}
    image_line = ", ".join(f"`{k}={v}`" for k, v in image.items()) or "nothing"
    required_line = re.sub(r"\b([A-Z][A-Z0-9_]{2,})\b", r"`\1`", ", ".join(production_labels()))
    return "\n".join(
        [
            "---",
            "title: Configuration reference",
            "---",
            "",
            "# Configuration reference",
            "",
            f"<!-- Generated from src/adapters/settings.py by scripts/config_reference.py; "
            f"do not edit. Regenerate: {REGENERATE} -->",
            "",
            "Every setting is an environment variable (names are case-insensitive; a `.env` file",
            "in the working directory is read when present). On a Hugging Face Space, set each one",
            "in the Space's settings: the ones marked *secret* as **secrets**, the others as",
            "**variables**; both reach the container as environment variables at run time",
            "(docs/deploy-huggingface.md).",
            "",
            f"- **Production mode** (`APP_ENV=production`, or automatically when `SPACE_ID` is set)"
            f" refuses to start without: {required_line}. The error names every missing one.",
            f"- **Secrets** ({len(secrets)}: "
            + ", ".join(f"`{n}`" for n in secrets)
            + ") are never printed, logged or echoed in an error.",
            f"- **The Docker image** sets {image_line}; anything set at run time wins.",
            "",
            "| variable | required in production | default | type | description | example |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the page is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date; run: {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(Settings.model_fields)} settings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
