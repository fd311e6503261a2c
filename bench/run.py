"""Run every bench and print the tables: .venv/bin/python bench/run.py [--out FILE]

Transports first (bench/transports.py), then the tick (bench/tick.py); about 10 minutes on a
busy 2-core machine. --out also writes the tables to FILE (Markdown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tick
import transports


def header() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"## Bench run {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}\n\n"
        f"- machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average at start: {load}\n"
        f"- command: `.venv/bin/python bench/run.py`\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="also write the tables to this file")
    args = parser.parse_args()
    started = time.monotonic()
    parts = [header()]
    print(parts[0], flush=True)
    parts.append(transports.main())
    parts.append(tick.main())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    footer = f"Total {time.monotonic() - started:.0f} s; load average at the end: {load}\n"
    print(footer, flush=True)
    parts.append(footer)
    if args.out:
        args.out.write_text("\n".join(parts))


if __name__ == "__main__":
    main()
