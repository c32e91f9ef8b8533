"""Loading Blueprint files at the 5 MiB limit: wall time and peak memory per document, each
in a fresh process, against the physical floor of reading the bytes (`json.loads` of the same
JSON text), and the CLI's start-up (`conductor --help`, `conductor run` of the demo)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MIB = 1024 * 1024
PROBE = """
import resource, sys, time
from pathlib import Path
started = time.perf_counter()
if sys.argv[2] == "floor":
    import json
    json.loads(Path(sys.argv[1]).read_bytes())
    outcome = "parsed"
else:
    from conductor.model.loader import load_blueprint_file
    from conductor.model.problems import InvalidBlueprint
    try:
        outcome = f"accepted {len(load_blueprint_file(Path(sys.argv[1])).nodes)} nodes"
    except InvalidBlueprint as exc:
        outcome = "refused: " + exc.problems[0].message[:60]
elapsed = time.perf_counter() - started
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, outcome)
"""


def _node(i: int) -> str:
    return (
        f"  - id: node-{i}\n    type: edit-fields\n    parameters:\n"
        f"      values: {{message: 'Hello {i}'}}\n"
    )


def yaml_nodes(limit: int) -> str:
    """A YAML Blueprint of edit-fields nodes, up to `limit` bytes."""
    parts, size, i = ["id: big\nname: big\nnodes:\n"], 0, 0
    while size < limit - 200:
        parts.append(_node(i))
        size, i = size + len(parts[-1]), i + 1
    return "".join(parts)


def yaml_flat(limit: int) -> str:
    """A YAML list of short strings, up to `limit` bytes (the shape that took 92 s before)."""
    head = "id: big\nname: big\nnodes: []\nitems:\n"
    count = (limit - len(head)) // len("  - item000000\n")
    return head + "".join(f"  - item{i:06d}\n" for i in range(count))


def json_nodes(limit: int) -> str:
    """A JSON Blueprint of edit-fields nodes, just under `limit` bytes."""
    one = len(json.dumps({"id": "n0000000", "type": "edit-fields", "parameters": {"values": {}}}))
    nodes = [
        {"id": f"n{i:07d}", "type": "edit-fields", "parameters": {"values": {}}}
        for i in range(limit // (one + 2) - 10)
    ]
    return json.dumps({"id": "big", "name": "big", "nodes": nodes})


def probe(path: Path, mode: str) -> tuple[float, int, str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), mode], capture_output=True, text=True, check=True
    )
    elapsed, rss_mb, outcome = done.stdout.split(" ", 2)
    return float(elapsed), int(rss_mb), outcome.strip()


def timed(command: list[str], runs: int) -> float:
    """The median wall time of `command`, in seconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs of each CLI command")
    args = parser.parse_args()
    documents: dict[str, tuple[str, Callable[[int], str]]] = {
        "YAML, nodes, 5 MiB": (".yaml", yaml_nodes),
        "YAML, flat list, 5 MiB": (".yaml", yaml_flat),
        "JSON, nodes, 5 MiB": (".json", json_nodes),
    }
    with tempfile.TemporaryDirectory() as folder:
        floor_path = Path(folder) / "floor.json"
        floor_path.write_text(json_nodes(5 * MIB))
        floor_s, floor_mb, _ = probe(floor_path, "floor")
        print(f"floor: json.loads of 5 MiB: {floor_s:.2f} s, {floor_mb} MB peak")
        for name, (suffix, make) in documents.items():
            path = Path(folder) / f"doc{suffix}"
            path.write_text(make(5 * MIB))
            elapsed, rss_mb, outcome = probe(path, "load")
            ratio = elapsed / floor_s
            print(f"{name:<24} {elapsed:6.2f} s ({ratio:5.1f}x floor) {rss_mb:4d} MB  {outcome}")
    conductor = [sys.executable, "-m", "conductor"]
    print(f"conductor --help: {timed([*conductor, '--help'], args.runs):.2f} s (median)")
    demo = [*conductor, "run", "examples/hello.yaml", "--input", "name=Ada", "--json"]
    print(f"conductor run examples/hello.yaml (embedded): {timed(demo, args.runs):.2f} s")


if __name__ == "__main__":
    main()
