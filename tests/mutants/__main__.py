"""`python -m tests.mutants [NAME ...]`: apply each curated mutant to a scratch copy of the
repository, run the tests that must notice it there, and exit non-zero if any mutant survived
(or could not be applied)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.mutants import MUTANTS, Mutant

REPO = Path(__file__).resolve().parents[2]
# Never copied: the interpreter is shared (the copy's code comes first on PYTHONPATH), and
# caches or history from the working tree must not leak into the copy.
SKIPPED = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
    ".hypothesis", "*.egg-info", ".tmp", "build",
)  # fmt: skip
TOP_PACKAGES = ("conductor", "storage", "workers", "nodes", "tests")
TIMEOUT_S = 300
PARALLEL = 2


class MutantError(RuntimeError):
    """A mutant could not be applied (its snippet is gone or ambiguous): fix the list."""


@dataclass(frozen=True)
class Outcome:
    """How one mutant fared."""

    mutant: Mutant
    killed: bool
    seconds: float
    detail: str


def copy_repo(target: Path) -> Path:
    """A copy of the repository at `target`, without the venv and caches."""
    shutil.copytree(REPO, target, ignore=SKIPPED)
    return target


def mutated(mutant: Mutant, root: Path) -> str:
    """The mutant's file under `root` with its snippet replaced; the snippet must occur
    exactly once."""
    text = (root / mutant.path).read_text()
    count = text.count(mutant.original)
    if count != 1:
        raise MutantError(
            f"{mutant.name}: snippet found {count} times in {mutant.path} (want exactly 1): "
            f"{mutant.original!r}"
        )
    return text.replace(mutant.original, mutant.replacement)


def apply(mutant: Mutant, root: Path) -> None:
    """Write the mutated file into the copy at `root`."""
    (root / mutant.path).write_text(mutated(mutant, root))


def environment(root: Path) -> dict[str, str]:
    """The environment for tests run in the copy: its code first on the path, for pytest and
    for every process the tests start (workers, recorders, the API)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_imports(root: Path) -> None:
    """Fail unless the copy's packages, not the working tree's, are what gets imported."""
    probe = "; ".join(
        [f"import {name}" for name in TOP_PACKAGES]
        + [f"print({name}.__file__)" for name in TOP_PACKAGES]
    )
    found = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=root,
        env=environment(root),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    strays = [path for path in found if not Path(path).resolve().is_relative_to(root.resolve())]
    if strays:
        raise MutantError(f"the copy at {root} imports code from elsewhere: {strays}")


def run_tests(root: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """The named tests, run in the copy with the copy's code."""
    command = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", *tests]
    return subprocess.run(
        command,
        cwd=root,
        env=environment(root),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def last_lines(text: str, count: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-count:])


def baseline(scratch: Path, mutants: list[Mutant]) -> None:
    """The named tests must pass on the unmutated copy, else a 'kill' would mean nothing."""
    root = copy_repo(scratch / "baseline")
    check_imports(root)
    tests = tuple(dict.fromkeys(test for mutant in mutants for test in mutant.tests))
    started = time.monotonic()
    done = run_tests(root, tests)
    print(f"baseline: {len(tests)} tests, {time.monotonic() - started:.1f} s", flush=True)
    if done.returncode != 0:
        raise MutantError(f"the tests fail without any mutant:\n{last_lines(done.stdout)}")


def try_mutant(mutant: Mutant, scratch: Path) -> Outcome:
    """Apply one mutant to a fresh copy and run its tests there; killed when every one of
    them fails."""
    root = copy_repo(scratch / mutant.name)
    check_imports(root)
    apply(mutant, root)
    started = time.monotonic()
    try:
        done = run_tests(root, mutant.tests)
    except subprocess.TimeoutExpired:
        return Outcome(mutant, True, time.monotonic() - started, f"timed out after {TIMEOUT_S} s")
    seconds = time.monotonic() - started
    # pytest's exit code 1: tests ran and some failed. Anything else (usage error, no tests
    # collected) is not a kill: a renamed test must not pass for a killed mutant.
    if done.returncode not in (0, 1):
        raise MutantError(
            f"{mutant.name}: pytest exited {done.returncode}\n{last_lines(done.stdout)}"
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    failed = [line.split()[1] for line in lines]
    # Every named test must notice the mutant, not just one of them.
    passed = [test for test in mutant.tests if not any(f.startswith(test) for f in failed)]
    detail = "\n".join([line[:200] for line in lines] + [f"passed: {test}" for test in passed])
    return Outcome(mutant, not passed, seconds, detail)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen mutants (all by default); 1 if any survived, 2 if one cannot run."""
    try:
        return run(argv)
    except MutantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(argv: list[str] | None) -> int:
    """Parse the arguments and run the mutants."""
    parser = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__)
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    args = parser.parse_args(argv)
    known = {mutant.name: mutant for mutant in MUTANTS}
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"unknown mutants {unknown}; known: {sorted(known)}")
    chosen = [known[name] for name in args.names] or list(MUTANTS)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="conductor-mutants-") as scratch_dir:
        scratch = Path(scratch_dir)
        for mutant in chosen:  # every snippet first: a stale list fails before any test runs
            mutated(mutant, REPO)
        if not args.no_baseline:
            baseline(scratch, chosen)
        outcomes = []
        # Two at a time, each in its own copy: their tests mostly wait on Redis and workers.
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            for outcome in pool.map(lambda mutant: try_mutant(mutant, scratch), chosen):
                verdict = "killed" if outcome.killed else "SURVIVED"
                mutant = outcome.mutant
                print(f"{verdict:9} {mutant.name} ({outcome.seconds:.1f} s): {mutant.guarantee}")
                print("    " + outcome.detail.replace("\n", "\n    "), flush=True)
                outcomes.append(outcome)
    survivors = [o.mutant.name for o in outcomes if not o.killed]
    total = time.monotonic() - started
    print(f"{len(outcomes) - len(survivors)}/{len(outcomes)} mutants killed in {total:.0f} s")
    if survivors:
        print(f"survived (a guarantee no test enforces): {', '.join(survivors)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
