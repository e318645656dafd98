"""What a py-spy profile of the service says, as text: the packages and functions
that take its samples.

    python -m bench.profile_summary bench/.work/profiles/chat-c50-....txt [--top 25]
        [--focus FUNCTION]

Reads py-spy's raw (collapsed) format (``frame;frame;... count`` per line, as the
chat and stream scenarios write with ``BENCH_PY_SPY`` set). Prints the share of
samples by package of the innermost frame (self), the functions with the most
samples anywhere on their stack (inclusive, each counted once per stack) and in
their own code (self). ``--focus`` keeps only the stacks through a function
(a substring of its frame), to see what is under it.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_PACKAGES = re.compile(r"(?:site-packages|src|lib/python3\.\d+)/(?P<package>[^/]+)")


def _parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def _package(frame: str) -> str:
    found = _FRAME.match(frame)
    file = found["file"] if found else frame
    where = _PACKAGES.search(file)
    if where is None:
        return file.rsplit("/", 1)[-1] or "?"
    package = where["package"].removesuffix(".py")
    return package if "site-packages" in file or "/src/" in file else f"stdlib:{package}"


def _name(frame: str) -> str:
    found = _FRAME.match(frame)
    if not found:
        return frame
    file = found["file"]
    short = "/".join(file.split("/")[-2:])
    return f"{found['function']} ({short})"


def summary(path: Path, top: int = 25, focus: str | None = None) -> list[str]:
    stacks = _parse(path)
    if focus:
        stacks = [(frames, n) for frames, n in stacks if any(focus in f for f in frames)]
    total = sum(n for _, n in stacks) or 1
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for frames, n in stacks:
        own[_name(frames[-1])] += n
        packages[_package(frames[-1])] += n
        for name in {_name(f) for f in frames}:
            anywhere[name] += n
    lines = [f"{path.name}: {total} samples" + (f" through {focus!r}" if focus else "")]
    lines.append("self, by package:")
    lines += [f"  {100 * n / total:5.1f} %  {p}" for p, n in packages.most_common(top)]
    lines.append("inclusive (on the stack):")
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in anywhere.most_common(top)]
    lines.append("self:")
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in own.most_common(top)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--focus", default=None)
    args = parser.parse_args()
    print("\n".join(summary(args.profile, args.top, args.focus)))


if __name__ == "__main__":
    main()
