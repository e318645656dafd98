"""The insights acceptance run (issue 17): 200 questions through the real chat path
(the textbook's 128 answerable questions, 32 of them asked twice, and 40 about four
topics the book lacks, paraphrased), then the coverage-gap report.

    .venv/bin/python bench/insights/run.py ../shared/corpus/physical-ai-textbook/docs

Prints the top groups with the themes of their questions, and how many answerable
questions were flagged uncertain. With EMBEDDINGS=local (and LOCAL_EMBEDDING_PATH) the
answers come from hybrid retrieval. Questions in gaps.jsonl were written for this run
and never used to tune the grouping.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

from adapters.settings import Settings
from entrypoints.bootstrap import build_container

HERE = Path(__file__).parent


async def main(docs: Path) -> int:
    labelled = [json.loads(line) for line in (HERE.parent / "eval" / "textbook.jsonl").open()]
    answerable = [q["question"] for q in labelled if q["answers"]]
    gaps = [json.loads(line) for line in (HERE / "gaps.jsonl").open()]
    theme = {g["question"]: g["theme"] for g in gaps}
    asked = answerable + answerable[:32] + [g["question"] for g in gaps]
    random.Random(17).shuffle(asked)
    with tempfile.TemporaryDirectory(prefix="rag-insights-") as data:
        settings = Settings().model_copy(update={"data_dir": Path(data), "docs_path": ""})
        container = await build_container(settings)
        try:
            await container.ingest_paths([docs])
            flagged: Counter[str] = Counter()
            for question in asked:
                turn = await container.chat.ask(question)
                kind = theme.get(question, "answerable")
                flagged[kind] += turn.answer.uncertain
            assert container.insights is not None
            report = await container.insights.report(
                container.clock.now().replace(year=2000), await container.pages()
            )
        finally:
            await container.aclose()
    answerable_asked = len(asked) - len(gaps)
    print(f"questions: {len(asked)} ({answerable_asked} answerable, {len(gaps)} the book lacks)")
    print(
        f"answerable flagged uncertain: {flagged['answerable']} of {answerable_asked} "
        f"({flagged['answerable'] / answerable_asked:.1%})"
    )
    for name in sorted({g["theme"] for g in gaps}):
        print(f"  {name}: {flagged[name]} of 10 flagged")
    print("top groups (size, label, themes of its questions):")
    for gap in report.gaps[:8]:
        themes = Counter(theme.get(q, "answerable") for q in gap.examples)
        print(
            f"  {gap.size:3d}  {', '.join(gap.terms):40s}  {dict(themes)}  e.g. {gap.examples[0]}"
        )
    top = [
        Counter(theme.get(q, "answerable") for q in gap.examples).most_common(1)[0][0]
        for gap in report.gaps[:4]
    ]
    print(
        f"top 4 groups' themes: {top}; all four missing themes on top: {len(set(top) - {'answerable'}) == 4}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
