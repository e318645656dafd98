"""The `rag-backend` command: serve, ingest, ask, eval, reindex, check-config, db."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import attrs
import httpx

from adapters.filesystem import check_source, read_sources
from adapters.index_lock import IndexLocked
from adapters.settings import ConfigurationError, Settings
from adapters.sql import migrate
from adapters.sql.engine import create_engine_for, dependency_errors, prepare_schema, redact
from adapters.sql.schema import metadata
from entrypoints import evaluate, instance, logs
from entrypoints.bootstrap import admin_key_path, build_container, check_production, plan_adapters
from entrypoints.composition import database_engine
from entrypoints.container import Container, ingest_demo, source_of
from entrypoints.insights_report import parse_since, report_csv, report_json, report_table
from entrypoints.reindex import reembed
from rag_core.errors import IndexMismatch, InvalidInput, RagError

HANDOVER_TIMEOUT = 300.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValueError as exc:  # pydantic's ValidationError names the variable, not its value
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_output, secrets=settings.secret_values())
    try:
        result: int = args.run(settings, args)
        return result
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except (RagError, Failed) as exc:  # one line, never a traceback
        print(f"error: {describe(exc, settings)}", file=sys.stderr)
        return exit_code(exc)


class Failed(Exception):
    """A failure of the command itself (e.g. the hand-over): one line, exit code 1."""


def describe(exc: Exception, settings: Settings) -> str:
    """One line for a failure the command reports instead of a traceback, secrets
    masked as in the logs."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, IndexMismatch):
        text = f"the index does not match this configuration: {text}"
    return logs.RedactionFilter(settings.secret_values()).redact(" ".join(text.split()))


def exit_code(exc: Exception) -> int:
    """2 for bad input (the user can fix the command), 1 for a failure."""
    return 2 if isinstance(exc, InvalidInput | ConfigurationError) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag-backend", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument(
        "--ingest",
        action="append",
        default=[],
        metavar="PATH",
        help="file or folder to ingest at start-up (repeatable; adds to DOCS_PATH)",
    )
    serve.add_argument(
        "--demo",
        action="append",
        default=[],
        metavar="PATH",
        help="docs to show while nothing else is indexed (repeatable); the first ingest of "
        "other docs removes them",
    )
    serve.add_argument("--host", help="override HOST")
    serve.add_argument("--port", type=int, help="override PORT")
    serve.set_defaults(run=_serve)

    ingest = commands.add_parser(
        "ingest", help="ingest files or folders (diffed against the index)"
    )
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.add_argument(
        "--url",
        help="send the documents to this service's POST /ingest (with ADMIN_API_KEY) instead of "
        "the local index; without it, a running local service gets them if it holds the index",
    )
    ingest.set_defaults(run=_ingest)

    ask = commands.add_parser("ask", help="ask a question and print the answer with its sources")
    ask.add_argument("question")
    ask.add_argument("--selected-text", default="")
    ask.add_argument("--url", help="ask this service instead of the local index")
    ask.set_defaults(run=_ask)

    evaluate.add_parser(commands)

    insights = commands.add_parser(
        "insights",
        help="what readers asked that the docs could not answer, the down-voted answers, "
        "pages cited and never cited, volume per day",
    )
    insights.add_argument("--since", default="30d", help="30d (default), 12h, 2w, or an ISO date")
    insights.add_argument("--format", choices=("table", "json", "csv"), default="table")
    insights.add_argument("--url", help="ask this service (with ADMIN_API_KEY) instead")
    insights.set_defaults(run=_insights)

    reindex_command = commands.add_parser(
        "reindex",
        help="re-embed every stored chunk for the configured embedder (no source folder needed)",
    )
    reindex_command.set_defaults(run=_reindex)

    check = commands.add_parser("check-config", help="show which adapters the environment selects")
    check.set_defaults(run=_check_config)

    db = commands.add_parser("db", help="the database schema's migrations")
    db_commands = db.add_subparsers(required=True, metavar="ACTION")
    db_commands.add_parser(
        "upgrade", help="migrate the configured database to this release's head (start-up does too)"
    ).set_defaults(run=_db_upgrade)
    db_commands.add_parser(
        "current", help="show the database's revision and the head (exit 1 unless at the head)"
    ).set_defaults(run=_db_current)
    revision = db_commands.add_parser(
        "revision",
        help="write a new migration for what the models changed (a source checkout; no "
        "database needed)",
    )
    revision.add_argument("-m", "--message", required=True, help="what the migration does")
    revision.set_defaults(run=_db_revision)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from entrypoints import workers

    updates: dict[str, Any] = {}
    if args.ingest:
        updates["docs_path"] = ",".join([settings.docs_path, *args.ingest]).strip(",")
    if args.host:
        updates["host"] = args.host
    if args.port:
        updates["port"] = args.port
    settings = settings.model_copy(update=updates)
    if args.demo:
        asyncio.run(_with_container(settings, _demo(args.demo), for_ingest=True))
    check_production(settings)  # once, here, rather than in every worker
    count = workers.worker_count(settings)
    if count > 1:
        return workers.Supervisor(settings, count).run()
    # One process whatever WORKERS said: its rate limits count in memory, not in the file.
    return serve_app(settings.model_copy(update={"workers": 1}))


def serve_app(
    settings: Settings,
    *,
    sockets: list[socket.socket] | None = None,
    nonce: str | None = None,
    on_started: Callable[[], None] | None = None,
) -> int:
    """Serve one process's app until it is stopped; the exit code. A worker of
    ``entrypoints.workers`` passes its own bound ``sockets``, its supervisor's ``nonce``
    and ``on_started`` (called once the app has started and the sockets listen)."""
    from entrypoints.http.app import create_app
    from entrypoints.server import ConnectionLimits, serve

    try:
        app = create_app(settings)
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    instance.install(app, settings, nonce)  # so the CLI can tell this service from any other
    failures = _report_startup_failures(app, settings)
    try:
        limits = ConnectionLimits.of(settings)
        serve(app, settings.host, settings.port, limits, sockets, on_started=on_started)
    except SystemExit:  # uvicorn's exit when the start-up failed
        if failures:
            return exit_code(failures[0])
        raise
    return 0


def _report_startup_failures(app: Any, settings: Settings) -> list[Exception]:
    """Make a domain or configuration error while the app starts one line on stderr
    instead of the traceback uvicorn logs; returns the list the failure is put in."""
    failures: list[Exception] = []
    starting = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        started = False
        try:
            async with starting(app) as state:
                started = True
                yield state
        except (RagError, ConfigurationError) as exc:
            if started:
                raise
            failures.append(exc)
            print(f"error: cannot start: {describe(exc, settings)}", file=sys.stderr)
            raise

    def no_traceback(record: logging.LogRecord) -> bool:
        return not (failures and record.getMessage().startswith("Traceback"))

    app.router.lifespan_context = lifespan
    logging.getLogger("uvicorn.error").addFilter(no_traceback)
    return failures


def _demo(paths: list[str]) -> Any:
    existing = [Path(p) for p in paths if Path(p).exists()]

    async def run(container: Container) -> None:
        if not await ingest_demo(container, existing):
            print("your own docs are indexed: the demo docs are not served", file=sys.stderr)

    return run


def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    for path in args.paths:  # all checked before any work
        if not path.exists():
            print(f"no such file or folder: {path}", file=sys.stderr)
            return 2
        check_source(path)  # InvalidInput: an unsupported type or a special file

    async def run(container: Container) -> None:
        report = await container.ingest_paths(list(args.paths), progress=_progress)
        _print_report(attrs.asdict(report))

    if args.url:  # a remote service (e.g. the Space): send it the documents
        _hand_over_ingest(settings, args, args.url)
        return 0
    try:
        asyncio.run(_with_container(settings, run, for_ingest=True))
    except IndexLocked:
        _hand_over_ingest(settings, args, _local_service(settings))
    return 0


def _local_service(settings: Settings) -> str:
    """The address of the running service that holds this DATA_DIR, verified (see
    entrypoints.instance) before anything is sent to it; Failed if there is none."""
    try:
        record = instance.verified_service(settings)
    except instance.NotTheService as exc:
        raise Failed(str(exc)) from None
    print(
        f"the index is in use by the service at {record.url} (pid {record.pid}), which holds "
        f"{settings.data_dir}; handing the work to it",
        file=sys.stderr,
    )
    return record.url


def _hand_over_ingest(settings: Settings, args: argparse.Namespace, base: str) -> None:
    for path in args.paths:
        body = {
            "documents": [{"path": p, "text": t} for p, t in read_sources(path)],
            "source": source_of(path),
        }
        _print_report(_post(settings, base, "/ingest", body, admin=True))


def _ask(settings: Settings, args: argparse.Namespace) -> int:
    async def run(container: Container) -> None:
        turn = await container.chat.ask(args.question, selected_text=args.selected_text)
        from entrypoints.http.schemas import ChatResponse

        _print_answer(ChatResponse.of(turn.answer, None).model_dump())

    body = {"query": args.question, "selected_text": args.selected_text}
    if args.url:
        _print_answer(_post(settings, args.url, "/chat", body, admin=False))
        return 0
    try:
        asyncio.run(_with_container(settings, run))
    except IndexLocked:
        _print_answer(_post(settings, _local_service(settings), "/chat", body, admin=False))
    return 0


def _insights(settings: Settings, args: argparse.Namespace) -> int:
    found: list[dict[str, Any]] = []
    since = parse_since(args.since, datetime.now(UTC))  # checked before any work

    async def run(container: Container) -> None:
        if container.insights is None:
            raise Failed("the question log is off (QUESTION_LOG=false)")
        found.append(report_json(await container.insights.report(since, await container.pages())))

    path = "/admin/insights?" + urlencode({"since": args.since})
    if args.url:
        found.append(_get(settings, args.url, path))
    else:
        try:
            asyncio.run(_with_container(settings, run))
        except IndexLocked:
            found.append(_get(settings, _local_service(settings), path))
    [report] = found
    if args.format == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False))
    elif args.format == "csv":
        print(report_csv(report), end="")
    else:
        print(report_table(report))
    return 0


def _reindex(settings: Settings, args: argparse.Namespace) -> int:
    async def run(container: Container) -> None:
        count = await reembed(
            container.ingestor, container.index, settings.data_dir, "rag-backend reindex"
        )
        print(f"re-embedded {count} chunks ({container.adapters.get('embedder', 'embedder')})")

    try:
        asyncio.run(_with_container(settings, run, for_ingest=True))
    except IndexLocked:
        print("the index is in use by a running service: stop it first", file=sys.stderr)
        return 1
    return 0


def _check_config(settings: Settings, args: argparse.Namespace) -> int:
    mode = "production" if settings.production else "local (embedded defaults allowed)"
    print(f"mode: {mode}")
    for port, adapter in plan_adapters(settings).items():
        print(f"{port}: {adapter}")
    print(
        f"cors origins: {', '.join(settings.cors_origins) or '(none)'}"
        + (f"; pattern {settings.cors_origin_regex}" if settings.cors_origin_regex else "")
    )
    missing = settings.missing_for_production()
    if settings.production and missing:
        print("missing for production: " + ", ".join(missing))
        return 1
    print("configuration ok")
    return 0


def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    engine, dependency = database_engine(settings)
    try:
        change = prepare_schema(engine, dependency=dependency)
    finally:
        engine.dispose()
    print(f"{redact(engine.url)}: {change.describe()}")
    return 0


def _db_current(settings: Settings, args: argparse.Namespace) -> int:
    engine, dependency = database_engine(settings)
    try:
        with dependency_errors(dependency), engine.connect() as connection:
            revision = migrate.current(connection)
            unmigrated = revision is None and migrate.is_unmigrated_schema(connection)
    finally:
        engine.dispose()
    head = migrate.head()
    if revision == head:
        state = f"{revision} (head)"
    elif unmigrated:
        state = f"none: made before migrations (an upgrade stamps it as {migrate.BASELINE})"
    elif revision is None:
        state = "none: no schema yet"
    else:
        state = f"{revision}, head is {head}: run rag-backend db upgrade (start-up does too)"
    print(f"{redact(engine.url)}: {state}")
    return 0 if revision == head else 1


def _db_revision(settings: Settings, args: argparse.Namespace) -> int:
    if not migrate.VERSIONS.is_dir() or "site-packages" in migrate.VERSIONS.parts:
        raise Failed(f"{migrate.VERSIONS} is not a source checkout's: install with pip -e")
    with tempfile.TemporaryDirectory() as folder:
        # A scratch SQLite database at the head is what the models are compared with.
        engine = create_engine_for(f"sqlite:///{Path(folder) / 'head.db'}")
        try:
            prepare_schema(engine)
            with engine.connect() as connection:
                if not migrate.differences(connection, metadata):
                    print("the migrations already build the models' schema: nothing to write")
                    return 1
            with engine.begin() as connection:
                path = migrate.new_revision(args.message, connection)
        finally:
            engine.dispose()
    print(f"wrote {path}: review it, then run the tests (SQLite and PostgreSQL)")
    return 0


async def _with_container(settings: Settings, work: Any, *, for_ingest: bool = False) -> None:
    container = await build_container(settings, for_ingest=for_ingest)
    try:
        await work(container)
    finally:
        await container.aclose()


def _post(settings: Settings, base: str, path: str, body: dict[str, Any], *, admin: bool) -> Any:
    return _call(settings, "POST", base, path, body, admin=admin)


def _get(settings: Settings, base: str, path: str) -> Any:
    return _call(settings, "GET", base, path, None, admin=True)


def _call(
    settings: Settings,
    method: str,
    base: str,
    path: str,
    body: dict[str, Any] | None,
    *,
    admin: bool,
) -> Any:
    headers = {}
    if admin:
        try:
            key = (
                settings.admin_api_key.get_secret_value()
                if settings.admin_api_key
                else admin_key_path(settings).read_text().strip()
            )
        except FileNotFoundError:
            raise ConfigurationError(
                f"no admin key for {base}: set ADMIN_API_KEY (no {admin_key_path(settings)})"
            ) from None
        headers["Authorization"] = f"Bearer {key}"
    try:
        response = httpx.request(
            method, base + path, json=body, headers=headers, timeout=HANDOVER_TIMEOUT
        )
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise Failed(f"the hand-over to {base}{path} failed: {reason}") from None
    if response.status_code >= 400:
        raise SystemExit(f"{base}{path} answered {response.status_code}: {response.text[:500]}")
    try:
        return response.json()
    except ValueError:
        raise Failed(f"{base}{path} did not answer JSON (is it rag-backend?)") from None


def _progress(done: int, total: int) -> None:
    if total >= 20 and (done % 10 == 0 or done == total):
        print(f"  {done}/{total} documents", file=sys.stderr)


def _print_report(report: dict[str, Any]) -> None:
    print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.items()))


def _print_answer(body: dict[str, Any]) -> None:
    print(body["response"])
    print()
    for source in body["sources"]:
        crumbs = " > ".join(source["heading_path"])
        print(
            f"[{source['number']}] {source['title']} — {source['url']}"
            + (f" ({crumbs})" if crumbs else "")
        )
    print(f"\n(mode: {body['mode']}, retrieval: {body['retrieval']})")


if __name__ == "__main__":
    raise SystemExit(main())
