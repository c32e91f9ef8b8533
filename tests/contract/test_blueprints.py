"""The Blueprint store's contract, on the file system and in memory."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conductor.model.blueprint import Blueprint
from conductor.model.loader import load_blueprint_file, parse_document
from conductor.model.problems import InvalidBlueprint
from storage.blueprints import (
    BlueprintExists,
    BlueprintNotFound,
    BlueprintStore,
    FilesystemBlueprintStore,
    InvalidBlueprintId,
    MemoryBlueprintStore,
    StoredBlueprint,
    content_of,
    open_blueprint_store,
)
from storage.cursors import InvalidCursor
from tests.conftest import ATOMITON_FLOWS

HELLO_WORLD = ATOMITON_FLOWS / "hello-world.flow.yaml"

UNSAFE_IDS = [
    "../escape",
    "..",
    "a/b",
    "/etc",
    "a\\b",
    "..\\escape",
    "a\x00b",
    ".hidden",
    "a..b",
    "x" * 201,
]


def blueprint(blueprint_id: str = "flow-1", **fields: Any) -> Blueprint:
    """A small valid Blueprint with one node positioned as the editor writes it."""
    data: dict[str, Any] = {
        "id": blueprint_id,
        "name": f"Flow {blueprint_id}",
        "nodes": [
            {
                "id": "a",
                "type": "edit-fields",
                "parameters": {"values": {"x": 1}},
                "position": {"x": 10, "y": 20},
            }
        ],
    }
    data.update(fields)
    return Blueprint.model_validate(data)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Where the file-system store lives (a child of tmp_path, to see writes outside it)."""
    return tmp_path / "data" / "blueprints"


@pytest.fixture(params=["filesystem", "memory"])
def blueprints(request: pytest.FixtureRequest, root: Path) -> BlueprintStore:
    """An empty Blueprint store on each implementation."""
    if request.param == "filesystem":
        return open_blueprint_store(root)
    return MemoryBlueprintStore()


def files_under(path: Path) -> set[Path]:
    """Every file and folder below `path`."""
    return set(path.rglob("*"))


# create / get


def test_create_then_get(blueprints: BlueprintStore) -> None:
    created = blueprints.create(blueprint(version="2.0.0"))
    assert (created.id, created.name, created.version, created.revision) == (
        "flow-1",
        "Flow flow-1",
        "2.0.0",
        1,
    )
    assert created.created_at == created.updated_at > 0
    got = blueprints.get("flow-1")
    assert got == created
    assert got.blueprint.nodes[0].parameters == {"values": {"x": 1}}


def test_version_defaults_to_1(blueprints: BlueprintStore) -> None:
    assert blueprints.create(blueprint()).version == "1"


@pytest.mark.parametrize(
    "source",
    [
        "id: from-text\nname: Text\nnodes: []\n",
        '{\n\t"id": "from-text",\n\t"name": "Text",\n\t"nodes": []\n}',
        {"id": "from-text", "name": "Text", "nodes": []},
    ],
    ids=["yaml", "json-with-tabs", "mapping"],
)
def test_create_from_text_or_data(blueprints: BlueprintStore, source: Any) -> None:
    created = blueprints.create(source)
    assert (created.id, created.name) == ("from-text", "Text")
    assert blueprints.get("from-text").content() == {"id": "from-text", "name": "Text", "nodes": []}


@pytest.mark.parametrize(
    "source",
    [
        "id: x\nname: !!python/object:os.system ls\n",
        "- just\n- a list\n",
        "name: no id\n",
        "id: x\nname: X\n" + "a: [" * 150 + "]" * 150,
        {"id": "x", "name": "X", "nodes": "not a list"},
        {"id": "x", "name": "X", "timeout": float("nan")},
    ],
    ids=["yaml-tag", "not-a-mapping", "no-id", "too-deep", "bad-field", "nan"],
)
def test_invalid_blueprint_is_refused(blueprints: BlueprintStore, source: Any) -> None:
    with pytest.raises(InvalidBlueprint):
        blueprints.create(source)
    assert blueprints.list() == ([], None)


def test_create_existing_id_is_refused(blueprints: BlueprintStore) -> None:
    blueprints.create(blueprint(name="first"))
    with pytest.raises(BlueprintExists) as caught:
        blueprints.create(blueprint(name="second"))
    assert caught.value.blueprint_id == "flow-1"
    assert "flow-1" in str(caught.value)
    assert blueprints.get("flow-1").name == "first"


def test_missing_blueprint(blueprints: BlueprintStore) -> None:
    with pytest.raises(BlueprintNotFound) as caught:
        blueprints.get("nope")
    assert caught.value.blueprint_id == "nope"
    with pytest.raises(BlueprintNotFound):
        blueprints.replace("nope", blueprint("nope"))
    with pytest.raises(BlueprintNotFound):
        blueprints.delete("nope")


# revisions and versions


def test_replace_adds_a_revision_and_keeps_the_old_one(blueprints: BlueprintStore) -> None:
    first = blueprints.create(blueprint(version="1.0.0"))
    second = blueprints.replace("flow-1", blueprint(name="Renamed", version="1.1.0"))
    assert (second.revision, second.name, second.version) == (2, "Renamed", "1.1.0")
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    third = blueprints.replace("flow-1", blueprint(name="Again"))
    assert (third.revision, third.version) == (3, "1")

    assert blueprints.get("flow-1") == third
    assert blueprints.get("flow-1", revision=1) == first
    assert blueprints.get("flow-1", revision=2) == second
    for missing in (0, -1, 4):
        with pytest.raises(BlueprintNotFound) as caught:
            blueprints.get("flow-1", revision=missing)
        assert caught.value.revision == missing


def test_replace_with_a_different_id_is_refused(blueprints: BlueprintStore) -> None:
    blueprints.create(blueprint("flow-1"))
    blueprints.create(blueprint("flow-2"))
    with pytest.raises(InvalidBlueprintId) as caught:
        blueprints.replace("flow-1", blueprint("flow-2"))
    error = caught.value
    assert isinstance(error, InvalidBlueprint)
    assert [p.path for p in error.problems] == ["id"]
    assert "flow-2" in error.problems[0].message and "flow-1" in error.problems[0].message
    assert blueprints.get("flow-1").revision == 1
    assert blueprints.get("flow-2").revision == 1


def test_delete_removes_every_revision(blueprints: BlueprintStore) -> None:
    blueprints.create(blueprint())
    blueprints.replace("flow-1", blueprint(name="v2"))
    blueprints.delete("flow-1")
    for revision in (None, 1, 2):
        with pytest.raises(BlueprintNotFound):
            blueprints.get("flow-1", revision=revision)
    assert blueprints.list() == ([], None)
    again = blueprints.create(blueprint(name="reborn"))
    assert (again.revision, again.name) == (1, "reborn")
    with pytest.raises(BlueprintNotFound):
        blueprints.get("flow-1", revision=2)


# UI fields


def test_ui_fields_survive_a_round_trip(blueprints: BlueprintStore) -> None:
    original = load_blueprint_file(HELLO_WORLD)
    as_written = parse_document(HELLO_WORLD.read_text(encoding="utf-8"))
    created = blueprints.create(original)
    got = blueprints.get(original.id)
    assert got.content() == as_written
    assert got.blueprint.nodes[0].model_extra is not None
    assert got.blueprint.nodes[0].model_extra["position"] == {"x": 100, "y": 200}
    assert got.blueprint.nodes[0].model_extra["inputPorts"][0]["dataType"] == "any"
    assert got.blueprint.metadata["tags"] == ["example", "beginner", "hello-world"]
    assert (got.name, got.version) == ("Hello World Flow", "1.0.0")
    assert json.loads(created.model_dump_json())["blueprint"] == as_written

    replaced = blueprints.replace(original.id, original)
    assert blueprints.get(original.id, revision=replaced.revision).content() == as_written


# unsafe ids


@pytest.mark.parametrize("unsafe", UNSAFE_IDS)
def test_unsafe_ids_are_refused(
    blueprints: BlueprintStore, unsafe: str, tmp_path: Path, root: Path
) -> None:
    before = files_under(tmp_path)
    attempts: list[Callable[[], object]] = [
        lambda: blueprints.create(blueprint(unsafe)),
        lambda: blueprints.create({"id": unsafe, "name": "X", "nodes": []}),
        lambda: blueprints.get(unsafe),
        lambda: blueprints.get(unsafe, revision=1),
        lambda: blueprints.replace(unsafe, blueprint(unsafe)),
        lambda: blueprints.delete(unsafe),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidBlueprintId) as caught:
            attempt()
        assert caught.value.blueprint_id == unsafe
        assert caught.value.problems[0].path == "id"
    assert {p for p in files_under(tmp_path) - before if root not in p.parents} == set()
    assert blueprints.list() == ([], None)


def test_empty_path_id_is_refused(blueprints: BlueprintStore) -> None:
    with pytest.raises(InvalidBlueprintId):
        blueprints.get("")


def test_unusual_but_safe_ids_work(blueprints: BlueprintStore) -> None:
    for safe in ("550e8400-e29b-41d4-a716-446655440001", "a.b", "Ünïcødé flow", "x" * 200):
        assert blueprints.create(blueprint(safe)).id == safe
        assert blueprints.get(safe).id == safe


# concurrency


def run_together(count: int, work: Callable[[int], object]) -> list[object]:
    """Run `work(i)` in `count` threads released at once; return results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_creates_have_one_winner(blueprints: BlueprintStore, round_: int) -> None:
    flow_id = f"race-{round_}"
    results = run_together(8, lambda i: blueprints.create(blueprint(flow_id, name=f"writer {i}")))
    winners = [r for r in results if isinstance(r, StoredBlueprint)]
    losers = [r for r in results if isinstance(r, BlueprintExists)]
    assert (len(winners), len(losers)) == (1, 7), results
    assert blueprints.get(flow_id) == winners[0]


def test_concurrent_replaces_each_get_a_revision(blueprints: BlueprintStore) -> None:
    blueprints.create(blueprint())
    results = run_together(8, lambda i: blueprints.replace("flow-1", blueprint(name=f"w{i}")))
    stored = [r for r in results if isinstance(r, StoredBlueprint)]
    assert sorted(s.revision for s in stored) == list(range(2, 10)), results
    assert blueprints.get("flow-1").revision == 9
    for item in stored:
        assert blueprints.get("flow-1", revision=item.revision).name == item.name


# listing


def test_listing_pages_through_every_blueprint_once(blueprints: BlueprintStore) -> None:
    ids = [f"flow-{n:02d}" for n in range(25)]
    for flow_id in reversed(ids):
        blueprints.create(blueprint(flow_id))
    blueprints.replace("flow-03", blueprint("flow-03", name="newest"))

    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        items, cursor = blueprints.list(limit=7, cursor=cursor)
        seen += [item.id for item in items]
        sizes.append(len(items))
        if cursor is None:
            break
    assert seen == ids
    assert sizes == [7, 7, 7, 4]
    everything, last = blueprints.list(limit=25)
    assert ([item.id for item in everything], last) == (ids, None)
    assert everything[3].name == "newest" and everything[3].revision == 2


def test_listing_default_limit_and_deletes_between_pages(blueprints: BlueprintStore) -> None:
    for n in range(60):
        blueprints.create(blueprint(f"f{n:02d}"))
    first, cursor = blueprints.list()
    assert len(first) == 50 and cursor is not None
    blueprints.delete("f49")  # the cursor's own id: the next page still starts after it
    blueprints.delete("f55")
    rest, end = blueprints.list(cursor=cursor)
    assert [item.id for item in rest] == [f"f{n}" for n in range(50, 60) if n != 55]
    assert end is None


def test_listing_refuses_bad_arguments(blueprints: BlueprintStore) -> None:
    with pytest.raises(InvalidCursor):
        blueprints.list(cursor="!!! not base64 \u00e9")
    with pytest.raises(ValueError, match="limit"):
        blueprints.list(limit=0)


# the file system


def test_files_on_disk(root: Path) -> None:
    store = open_blueprint_store(root)
    store.create(blueprint())
    store.replace("flow-1", blueprint(name="v2"))
    folder = root / "flow-1"
    assert {p.name for p in folder.iterdir()} == {"1.json", "2.json", "latest"}
    written = json.loads((folder / "2.json").read_text(encoding="utf-8"))
    assert (written["revision"], written["name"]) == (2, "v2")
    assert written["blueprint"]["nodes"][0]["position"] == {"x": 10, "y": 20}
    assert open_blueprint_store(root).get("flow-1").revision == 2  # a second process sees it


def test_leftovers_of_a_crash_are_ignored(root: Path) -> None:
    store = FilesystemBlueprintStore(root)
    store.create(blueprint())
    folder = root / "flow-1"
    # A writer died mid-write: a half-written temporary file, never published.
    (folder / ".tmp-crashed").write_text('{"id": "flow-1", "revision": 2, "bluep')
    # Another died after making the folder of a new Blueprint, before publishing revision 1.
    (root / "orphan").mkdir()
    (root / "orphan" / ".tmp-crashed").write_text("{")
    # And a delete died between moving a folder aside and removing it.
    (root / ".trash-0123").mkdir()
    (root / ".trash-0123" / "1.json").write_text("{}")

    assert store.get("flow-1").revision == 1
    assert [item.id for item in store.list().items] == ["flow-1"]
    with pytest.raises(BlueprintNotFound):
        store.get("orphan")
    with pytest.raises(BlueprintNotFound):
        store.delete("orphan")
    assert store.replace("flow-1", blueprint(name="v2")).revision == 2
    assert store.create(blueprint("orphan")).revision == 1
    assert [item.id for item in store.list().items] == ["flow-1", "orphan"]

    open_blueprint_store(root)  # sweeps what the interrupted delete left
    assert not (root / ".trash-0123").exists()


def test_a_stale_latest_hint_is_harmless(root: Path) -> None:
    store = FilesystemBlueprintStore(root)
    store.create(blueprint())
    store.replace("flow-1", blueprint(name="v2"))
    store.replace("flow-1", blueprint(name="v3"))
    hint = root / "flow-1" / "latest"
    # A writer died between publishing a revision and moving the hint; or the hint is damaged.
    for stale in ("1", "garbage", "99"):
        hint.write_text(stale)
        assert store.get("flow-1").name == "v3"
    hint.unlink()
    assert store.get("flow-1").revision == 3
    assert store.replace("flow-1", blueprint(name="v4")).revision == 4


def test_content_of_keeps_only_what_was_written() -> None:
    model = Blueprint.model_validate({"id": "x", "name": "X"})
    assert content_of(model) == {"id": "x", "name": "X"}
