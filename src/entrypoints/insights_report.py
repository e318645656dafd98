"""The insights report as the admin route and the CLI give it: ``since`` parsing
("30d", "12h", "2026-11-01", an ISO time) and the report as JSON, a text table or CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from rag_core.errors import InvalidInput
from rag_core.insights import Report

_AGO = re.compile(r"^(\d{1,5})([dhw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_since(text: str, now: datetime) -> datetime:
    """``30d``/``12h``/``2w`` before ``now``, or an ISO date or time (UTC unless it
    says otherwise). Raises InvalidInput for anything else."""
    text = text.strip()
    ago = _AGO.match(text)
    if ago:
        return now - int(ago.group(1)) * _UNITS[ago.group(2)]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("since: a span such as 30d, 12h or 2w, or an ISO date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def report_json(report: Report) -> dict[str, Any]:
    return {
        "since": report.since.isoformat(),
        "questions": report.questions,
        "uncertain": report.uncertain,
        "votes": {"up": report.votes_up, "down": report.votes_down},
        "coverage_gaps": [
            {"size": g.size, "terms": list(g.terms), "examples": list(g.examples)}
            for g in report.gaps
        ],
        "most_down_voted": [
            {
                "answer_id": d.answer.id,
                "question": d.answer.question,
                "asked_at": d.answer.asked_at.isoformat(),
                "mode": d.answer.mode,
                "pages": list(d.answer.pages),
                "down": d.down,
                "up": d.up,
                "comments": list(d.comments),
            }
            for d in report.disliked
        ],
        "most_cited_pages": [{"page": page, "answers": n} for page, n in report.most_cited],
        "pages_never_cited": list(report.never_cited),
        "per_day": [
            {"day": d.day.isoformat(), "questions": d.questions, "uncertain": d.uncertain}
            for d in report.days
        ],
    }


def report_table(report: dict[str, Any]) -> str:
    """:func:`report_json`'s report as text for a terminal."""
    votes = report["votes"]
    lines = [
        f"since {report['since']}: {report['questions']} questions, {report['uncertain']} "
        f"uncertain; votes {votes['up']} up, {votes['down']} down",
        "",
        "Coverage gaps (uncertain questions, grouped, largest first):",
    ]
    for gap in report["coverage_gaps"]:
        lines.append(f"  {gap['size']:4d}  {', '.join(gap['terms']) or '-'}")
        lines.extend(f"          - {example}" for example in gap["examples"])
    lines += ["", "Most down-voted answers:"]
    for d in report["most_down_voted"]:
        lines.append(f"  {d['down']:4d} down {d['up']:3d} up  {d['question']}")
        lines.extend(f"          “{comment}”" for comment in d["comments"])
    lines += ["", "Most cited pages:"]
    lines.extend(f"  {p['answers']:4d}  {p['page']}" for p in report["most_cited_pages"])
    never = report["pages_never_cited"]
    lines += ["", f"Pages never cited ({len(never)}):"]
    lines.extend(f"        {page}" for page in never)
    lines += ["", "Per day (questions, uncertain):"]
    lines.extend(
        f"  {d['day']}  {d['questions']:5d} {d['uncertain']:5d}" for d in report["per_day"]
    )
    return "\n".join(lines)


def report_csv(report: dict[str, Any]) -> str:
    """:func:`report_json`'s report, one row per finding: ``section, key, count, detail``."""
    out = io.StringIO()
    rows = csv.writer(out)
    rows.writerow(["section", "key", "count", "detail"])
    for gap in report["coverage_gaps"]:
        rows.writerow(
            ["coverage_gap", " ".join(gap["terms"]), gap["size"], " | ".join(gap["examples"])]
        )
    for d in report["most_down_voted"]:
        rows.writerow(["down_voted", d["question"], d["down"], " | ".join(d["comments"])])
    for page in report["most_cited_pages"]:
        rows.writerow(["cited_page", page["page"], page["answers"], ""])
    for page in report["pages_never_cited"]:
        rows.writerow(["never_cited_page", page, 0, ""])
    for day in report["per_day"]:
        rows.writerow(["day", day["day"], day["questions"], f"uncertain {day['uncertain']}"])
    return out.getvalue()
