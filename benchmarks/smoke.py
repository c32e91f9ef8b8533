"""`python -m benchmarks.smoke`: every comparing benchmark with `--quick`, at once, checking each
runs to its end and prints its Conductor/bare ratios (never their values: a smoke run on a busy
CI machine measures nothing). Prints those ratio lines; exit 1 naming what failed. CI runs it
(`make bench-smoke` in .ci/run).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300


@dataclass(frozen=True)
class Smoke:
    """One benchmark's quick run and the lines that carry its ratios."""

    module: str
    ratio_line: str  # a regular expression; at least one line must match

    def command(self) -> list[str]:
        return [sys.executable, "-m", f"benchmarks.{self.module}", "--quick"]


SMOKES = (
    # the latency table's rows: bare and Conductor p50/p95, then the two ratios
    Smoke("canvas_overhead", r"^\([a-z]\) .*\s\d+\.\d\d\s+\d+\.\d\d\s+-?\d+\.\d\d\s"),
    Smoke("ceiling", r"conductor / bare \(best\): \d+\.\d\dx"),
    Smoke("scaling", r"^\s+\d+ (bare|conductor)\*?\s.*\d+\.\d\dx"),
    Smoke("api", r"^ratio p50 \d+\.\d\d$"),
    Smoke("priority", r"^without / with priorities: \d+\.\d\dx$"),
    # no ratio: its growth lines (a smoke run is too short to read anything into them)
    Smoke("soak", r"^  worker RSS MB\s+[-+]\d+\.\d\d per 1000"),
)


def main() -> int:
    """Start every quick run, wait for all, report."""
    started = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    running = {}
    for smoke in SMOKES:
        running[smoke] = subprocess.Popen(
            smoke.command(), cwd=REPO, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
    failures = []
    for smoke, process in running.items():
        try:
            output, _ = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            failures.append(f"{smoke.module}: no end within {TIMEOUT_S} s")
            continue
        ratios = [line for line in output.splitlines() if re.search(smoke.ratio_line, line)]
        print(f"benchmarks.{smoke.module} --quick: exit {process.returncode}")
        for line in ratios:
            print(f"  {line.strip()}")
        if process.returncode != 0 or not ratios:
            tail = "\n".join(output.splitlines()[-30:])
            failures.append(
                f"{smoke.module}: exit {process.returncode}, ratios {len(ratios)}\n{tail}"
            )
    seconds = time.monotonic() - started
    print(f"{len(SMOKES) - len(failures)}/{len(SMOKES)} benchmarks ran in {seconds:.0f} s")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
