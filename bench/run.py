"""Run the benches and print the tables: .venv/bin/python bench/run.py [--quick|--middle|--full]

The benches of issue 11 by default: the mailout side by side (bench/mailout.py), the idle tick
at scale against RedBeat (bench/tickscale.py) and the re-plan of many municipalities
(bench/replan290.py). `--parts` picks others, among them the older transport and tick benches
(`--parts transports,tick`, about 10 minutes). Sizes:

| size     | mailout msgs × reps | tick: large | municipalities | took (2 cores, quiet)      |
|----------|---------------------|-------------|----------------|----------------------------|
| --quick  | 500 × 3             | 100,000     | 29             | 7.5 min in all             |
| --middle | 2,000 × 3           | 1,000,000   | 290            | not run as a whole         |
| --full   | 10,000 × 3          | 1,000,000   | 290            | not run as a whole         |

(`make bench` on a fresh clone, 2026-12-07: 442 s for the benches, 475 s with the install.
The parts at the larger sizes were run alone: the mailout at 10,000 × 3 about 20 min, the
tick at 1,000,000 about 1 min, the re-plan of 290 about 2.5 min; docs/performance.md.)

--profile adds the py-spy profile of the worker (one more mailout repetition of each kind).
--out also writes the tables to FILE (Markdown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SIZES = {
    "quick": {"messages": 500, "large": 100_000, "municipalities": 29},
    "middle": {"messages": 2000, "large": 1_000_000, "municipalities": 290},
    "full": {"messages": 10_000, "large": 1_000_000, "municipalities": 290},
}
DEFAULT_PARTS = "mailout,tickscale,replan"


def header(command: str) -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"## Bench run {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}\n\n"
        f"- machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average at start: {load}\n"
        f"- command: `{command}`\n"
    )


def parts(size: dict[str, int], profile: bool) -> dict[str, list[str]]:
    """Each part's script and arguments. Each runs in a process of its own: tick.py's bulk
    load re-adds a constraint with AddConstraint, which takes it out of the metadata's
    CREATE TABLE for the rest of that process."""
    return {
        "mailout": ["mailout.py", "--messages", str(size["messages"])]
        + (["--profile"] if profile else []),
        "tickscale": ["tickscale.py", "--large", str(size["large"])],
        "replan": ["replan290.py", "--municipalities", str(size["municipalities"])],
        "transports": ["transports.py"],
        "tick": ["tick.py"],
    }


def run_part(script: list[str]) -> str:
    """Run one bench script; its tables come back through the file named by BENCH_MD."""
    with tempfile.TemporaryDirectory() as folder:
        tables = Path(folder) / "tables.md"
        done = subprocess.run(
            [sys.executable, str(HERE / script[0]), *script[1:]],
            env={**os.environ, "BENCH_MD": str(tables)},
            check=False,
        )
        if done.returncode != 0 or not tables.exists():
            return f"\n**{script[0]} failed (exit {done.returncode}); see its output above.**\n"
        return tables.read_text(encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    for name in SIZES:
        group.add_argument(f"--{name}", dest="size", action="store_const", const=name)
    parser.add_argument("--parts", default=DEFAULT_PARTS, help=f"default {DEFAULT_PARTS}")
    parser.add_argument("--profile", action="store_true", help="py-spy the worker (mailout)")
    parser.add_argument("--messages", type=int, help="mailout messages, instead of the size's")
    parser.add_argument("--out", type=Path, help="also write the tables to this file")
    args = parser.parse_args()
    size = dict(SIZES[args.size or "quick"])
    if args.messages:
        size["messages"] = args.messages
    available = parts(size, args.profile)
    chosen = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in available]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(available)}")
    started = time.monotonic()
    command = " ".join([".venv/bin/python bench/run.py", *sys.argv[1:]])
    out = [header(command)]
    print(out[0], flush=True)
    for name in chosen:
        out.append(run_part(available[name]))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    footer = f"Total {time.monotonic() - started:.0f} s; load average at the end: {load}\n"
    print(footer, flush=True)
    out.append(footer)
    if args.out:
        args.out.write_text("\n".join(out))


if __name__ == "__main__":
    main()
