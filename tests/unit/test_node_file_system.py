"""`file-system` runs every operation inside the files root and nowhere else."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from conductor.model.loader import load_blueprint_file
from nodes.base import NodeContext, NodeEnvironment
from nodes.errors import InvalidParameters, NodeError
from nodes.file_system import FileSystemNode
from nodes.file_system_parameters import FileSystemParameters, expand_braces
from nodes.files import OutsideFilesRoot
from tests.conftest import ATOMITON_FLOWS

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The files root, with a sibling folder outside it that nothing may touch."""
    files = tmp_path / "files"
    files.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    return files


def run(root: Path, data: Any = None, **parameters: Any) -> dict[str, Any]:
    """Validate `parameters` as a Blueprint would and run `file-system` on `root`; with
    `content` and no `operation`, the operation is `write`."""
    parameters.setdefault("operation", "write" if "content" in parameters else "read")
    params = FileSystemParameters.model_validate(parameters)
    context = NodeContext(
        execution_id="exec-1",
        node_id="files",
        inputs={"input": data},
        data=data,
        environment=NodeEnvironment(files_root=root),
    )
    return dict(FileSystemNode().run(params, context))


def fails(root: Path, match: str, data: Any = None, **parameters: Any) -> NodeError:
    """Run and expect a NodeError whose message matches `match`."""
    with pytest.raises(NodeError, match=match) as caught:
        run(root, data, **parameters)
    return caught.value


# --- parameters ------------------------------------------------------------------------------


def test_defaults_follow_atomiton() -> None:
    params = FileSystemParameters.model_validate({"path": "a.txt"})
    assert params.operation == "read"
    assert params.encoding == "utf8"
    assert (params.createDirectories, params.overwrite, params.recursive) == (False, False, False)
    assert params.fullPaths is False


def test_path_is_required_and_not_empty() -> None:
    with pytest.raises(ValidationError, match="path"):
        FileSystemParameters.model_validate({"operation": "read"})
    with pytest.raises(ValidationError, match="path"):
        FileSystemParameters.model_validate({"path": ""})


def test_atomiton_aliases_are_accepted() -> None:
    params = FileSystemParameters.model_validate(
        {"filePath": "/output/results.json", "createDirectory": True, "encoding": "utf-8"}
    )
    assert params.path == "/output/results.json"
    assert params.createDirectories is True
    assert params.encoding == "utf8"


def test_a_port_named_path_overrides_the_filepath_alias() -> None:
    # run_node merges input ports over parameters by field name: `path` next to `filePath`.
    params = FileSystemParameters.model_validate({"filePath": "from-parameter", "path": "port"})
    assert params.path == "port"


def test_unknown_parameters_are_dropped_and_unknown_operations_refused() -> None:
    # An unknown key is ignored, as Atomiton ignores it (validation warns: test_validation.py).
    params = FileSystemParameters.model_validate({"path": "a", "overwirte": True})
    assert params.overwrite is False and "overwirte" not in params.model_dump()
    with pytest.raises(ValidationError, match="operation"):
        FileSystemParameters.model_validate({"path": "a", "operation": "chmod"})
    with pytest.raises(ValidationError, match="encoding"):
        FileSystemParameters.model_validate({"path": "a", "encoding": "utf16"})


def test_bad_patterns_are_refused_before_running() -> None:
    with pytest.raises(ValidationError, match="fileFilter"):
        FileSystemParameters.model_validate({"path": ".", "fileFilter": "(unclosed"})
    with pytest.raises(ValidationError, match="more than 256 patterns"):
        FileSystemParameters.model_validate({"path": ".", "pattern": "{a,b,c,d}" * 5})


def test_real_atomiton_file_system_nodes_validate() -> None:
    for flow in ("hello-world", "data-transform", "image-processor"):
        blueprint = load_blueprint_file(ATOMITON_FLOWS / f"{flow}.flow.yaml")
        found = [node for node in blueprint.nodes if node.type == "file-system"]
        assert found, flow
        for node in found:
            FileSystemParameters.model_validate(node.parameters)


def test_brace_alternatives_expand() -> None:
    assert expand_braces("*.{jpg,png,gif}") == ["*.jpg", "*.png", "*.gif"]
    assert expand_braces("{a,b}-{1,2}") == ["a-1", "a-2", "b-1", "b-2"]
    assert expand_braces("x{a,{b,c}}") == ["xa", "xb", "xc"]
    assert expand_braces("plain{}") == ["plain{}"]


# --- write and read --------------------------------------------------------------------------


def test_write_creates_directories_and_reports_a_relative_path(root: Path) -> None:
    out = run(root, path=".tmp/out/hello.txt", content="Hello\n", createDirectories=True)
    assert out == {
        "result": "File written: .tmp/out/hello.txt",
        "success": True,
        "path": ".tmp/out/hello.txt",
        "size": 6,
    }
    assert (root / ".tmp/out/hello.txt").read_text() == "Hello\n"


def test_write_without_create_directories_names_the_missing_folder(root: Path) -> None:
    error = fails(
        root, "folder a/b does not exist; set createDirectories", path="a/b/c.txt", content="x"
    )
    assert error.retryable is False


def test_write_refuses_to_overwrite_unless_asked(root: Path) -> None:
    (root / "keep.txt").write_text("original")
    fails(root, "keep.txt already exists; set overwrite: true", path="keep.txt", content="new")
    assert (root / "keep.txt").read_text() == "original"
    run(root, path="keep.txt", content="new", overwrite=True)
    assert (root / "keep.txt").read_text() == "new"


def test_write_refuses_a_folder(root: Path) -> None:
    (root / "folder").mkdir()
    fails(root, "it is a folder", path="folder", content="x", overwrite=True)


def test_write_takes_the_input_when_content_is_unset(root: Path) -> None:
    run(root, data="from the input", operation="write", path="in.txt")
    assert (root / "in.txt").read_text() == "from the input"


def test_write_serialises_non_strings_as_json(root: Path) -> None:
    value = {"total": 3, "names": ["Ålice", "Bob"], "ok": True}
    run(root, path="out.json", content=value)
    text = (root / "out.json").read_text(encoding="utf-8")
    assert text == json.dumps(value, indent=2, ensure_ascii=False)
    run(root, data=[1, 2], operation="write", path="list.json")
    assert json.loads((root / "list.json").read_text()) == [1, 2]
    run(root, path="n.txt", content=42)
    assert (root / "n.txt").read_text() == "42"


def test_write_needs_something_to_write(root: Path) -> None:
    with pytest.raises(InvalidParameters, match="content"):
        run(root, operation="write", path="empty.txt")


def test_write_and_read_in_every_encoding(root: Path) -> None:
    raw = bytes(range(256))
    run(root, path="b64.bin", content=base64.b64encode(raw).decode(), encoding="base64")
    assert (root / "b64.bin").read_bytes() == raw
    assert run(root, path="b64.bin", encoding="base64")["content"] == base64.b64encode(raw).decode()
    assert run(root, path="b64.bin", encoding="hex")["content"] == raw.hex()
    assert run(root, path="b64.bin", encoding="binary")["content"] == raw.decode("latin-1")
    run(root, path="hex.bin", content="00ff10", encoding="hex")
    assert (root / "hex.bin").read_bytes() == b"\x00\xff\x10"
    run(root, path="latin.txt", content="café", encoding="binary")
    assert (root / "latin.txt").read_bytes() == "café".encode("latin-1")
    run(root, path="ascii.txt", content="plain", encoding="ascii")
    assert run(root, path="ascii.txt", encoding="ascii")["content"] == "plain"


def test_content_that_does_not_fit_the_encoding_is_refused(root: Path) -> None:
    fails(root, "encoding base64", path="x", content="not base64!", encoding="base64")
    fails(root, "encoding hex", path="x", content="zz", encoding="hex")
    fails(root, "encoding ascii", path="x", content="café", encoding="ascii")
    assert not (root / "x").exists()


def test_read_returns_content_and_stats(root: Path) -> None:
    (root / "docs").mkdir()
    (root / "docs/note.txt").write_text("héllo", encoding="utf-8")
    out = run(root, path="docs/note.txt")
    assert out["result"] == out["content"] == "héllo"
    assert (out["success"], out["path"], out["size"]) == (True, "docs/note.txt", 6)
    assert ISO_MS.fullmatch(out["modified"])


def test_read_of_a_missing_file_fails_without_retry(root: Path) -> None:
    error = fails(root, "file nothing.txt does not exist", path="nothing.txt")
    assert (error.code, error.retryable) == ("EXECUTION_FAILED", False)


def test_read_of_a_folder_or_of_bytes_that_are_not_text(root: Path) -> None:
    (root / "folder").mkdir()
    fails(root, "folder is not a file", path="folder")
    (root / "image.bin").write_bytes(b"\xff\xfe\x00")
    fails(root, "image.bin is not utf8 text .* encoding: base64", path="image.bin")


def test_an_absolute_path_under_the_root_is_accepted(root: Path) -> None:
    out = run(root, path=str(root / "abs.txt"), content="a")
    assert out["path"] == "abs.txt"  # shown relative to the root, never the host's folders
    assert (root / "abs.txt").read_text() == "a"
    read = run(root, path=str(root / "abs.txt"))
    assert (read["content"], read["path"]) == ("a", "abs.txt")
    assert run(root, path="abs.txt")["content"] == "a"


def test_atomiton_style_root_paths_start_at_the_files_root(root: Path) -> None:
    # Atomiton wrote `/abs.txt` for a file under its root: the files root works like a chroot.
    (root / "abs.txt").write_text("a")
    assert run(root, path="/abs.txt")["content"] == "a"
    assert run(root, path="/abs.txt")["path"] == "abs.txt"


# --- confinement -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation", ["read", "write", "exists", "create", "delete", "list", "copy", "move"]
)
def test_dot_dot_out_of_the_root_is_refused(root: Path, operation: str) -> None:
    with pytest.raises(OutsideFilesRoot, match="outside the files root"):
        run(root, operation=operation, path="../outside/secret.txt", content="x", targetPath="t")
    assert (root.parent / "outside/secret.txt").read_text() == "secret"


@pytest.mark.parametrize("operation", ["write", "copy", "move"])
def test_a_target_out_of_the_root_is_refused(root: Path, operation: str) -> None:
    (root / "source.txt").write_text("source")
    with pytest.raises(OutsideFilesRoot):
        run(
            root,
            operation=operation,
            path="source.txt" if operation != "write" else "../outside/secret.txt",
            targetPath="../outside/secret.txt",
            content="x",
            overwrite=True,
        )
    assert (root.parent / "outside/secret.txt").read_text() == "secret"
    assert (root / "source.txt").read_text() == "source"


@pytest.mark.parametrize(
    "operation", ["read", "write", "exists", "create", "delete", "list", "copy", "move"]
)
def test_an_absolute_path_outside_the_root_never_reaches_the_outside(
    root: Path, operation: str
) -> None:
    outside = root.parent / "outside" / "secret.txt"
    (root / "source.txt").write_text("source")
    try:  # re-rooted: the host's file is never touched, whatever the operation does
        run(
            root,
            operation=operation,
            path=str(outside) if operation not in ("copy", "move") else "source.txt",
            targetPath=str(outside),
            content="inside",
            createDirectories=True,
            overwrite=True,
            recursive=True,
        )
    except NodeError as exc:
        assert not isinstance(exc, OutsideFilesRoot)
    assert outside.read_text() == "secret"
    assert sorted(p.name for p in outside.parent.iterdir()) == ["secret.txt"]


@pytest.mark.parametrize("operation", ["write", "copy", "move"])
def test_an_absolute_target_outside_the_root_is_refused(root: Path, operation: str) -> None:
    outside = root.parent / "outside" / "secret.txt"
    (root / "source.txt").write_text("source")
    with pytest.raises(OutsideFilesRoot, match="outside the files root"):
        run(
            root,
            operation=operation,
            path="/../outside/secret.txt" if operation == "write" else "source.txt",
            targetPath="/../outside/secret.txt",
            content="x",
            overwrite=True,
            createDirectories=True,
        )
    assert outside.read_text() == "secret"
    assert (root / "source.txt").read_text() == "source"
    assert sorted(p.name for p in root.iterdir()) == ["source.txt"]


def test_system_paths_start_at_the_files_root(root: Path) -> None:
    for path, relative in [("/etc/passwd", "etc/passwd"), ("/data/sample.csv", "data/sample.csv")]:
        error = fails(root, f"file {relative} does not exist", path=path)
        assert not isinstance(error, OutsideFilesRoot)
        assert str(root) not in str(error)
    with pytest.raises(OutsideFilesRoot, match="outside the files root"):
        run(root, path="/../outside/secret.txt")
    assert (root.parent / "outside" / "secret.txt").read_text() == "secret"


ESCAPES: list[dict[str, Any]] = [
    {"operation": "read", "path": "escape.txt"},
    {"operation": "write", "path": "escape.txt", "content": "x", "overwrite": True},
    {"operation": "write", "path": "escape-dir/new.txt", "content": "x"},
    {"operation": "list", "path": "escape-dir"},
    {"operation": "create", "path": "escape-dir/sub"},
    {"operation": "delete", "path": "escape-dir/secret.txt"},
    {"operation": "copy", "path": "escape.txt", "targetPath": "copy.txt"},
    {"operation": "copy", "path": "inside.txt", "targetPath": "escape.txt", "overwrite": True},
    {"operation": "move", "path": "escape-dir/secret.txt", "targetPath": "moved.txt"},
    {"operation": "exists", "path": "escape.txt"},
]


@pytest.mark.parametrize("parameters", ESCAPES, ids=lambda p: f"{p['operation']}-{p['path']}")
def test_a_symlink_inside_the_root_that_points_outside_is_refused(
    root: Path, parameters: dict[str, Any]
) -> None:
    outside = root.parent / "outside"
    (root / "escape.txt").symlink_to(outside / "secret.txt")
    (root / "escape-dir").symlink_to(outside)
    (root / "inside.txt").write_text("inside")
    with pytest.raises(OutsideFilesRoot, match="outside the files root"):
        run(root, **parameters)
    assert (outside / "secret.txt").read_text() == "secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert sorted(p.name for p in root.iterdir()) == ["escape-dir", "escape.txt", "inside.txt"]


def test_list_leaves_out_links_that_point_outside(root: Path) -> None:
    (root / "escape.txt").symlink_to(root.parent / "outside" / "secret.txt")
    (root / "inner.txt").write_text("in")
    (root / "alias.txt").symlink_to(root / "inner.txt")
    assert run(root, operation="list", path=".", includeStats=True)["files"] == [
        {
            "name": "alias.txt",
            "path": "alias.txt",
            "size": 2,
            "modified": run(root, path="inner.txt")["modified"],
            "isDirectory": False,
        },
        {
            "name": "inner.txt",
            "path": "inner.txt",
            "size": 2,
            "modified": run(root, path="inner.txt")["modified"],
            "isDirectory": False,
        },
    ]


def test_outputs_never_show_the_host_path(root: Path) -> None:
    (root / "a").mkdir()
    (root / "a/f.txt").write_text("f")
    outputs = [
        run(root, path="a/f.txt"),
        run(root, operation="exists", path="a/f.txt"),
        run(root, operation="list", path="a", fullPaths=True, includeStats=True),
        run(root, operation="copy", path="a/f.txt", targetPath="b.txt"),
        run(root, operation="move", path="b.txt", targetPath="c.txt"),
        run(root, operation="create", path="d"),
        run(root, operation="delete", path="c.txt"),
    ]
    assert str(root) not in json.dumps(outputs)


# --- exists, create, delete ------------------------------------------------------------------


def test_exists(root: Path) -> None:
    (root / "here.txt").write_text("x")
    assert run(root, operation="exists", path="here.txt") == {
        "result": True,
        "exists": True,
        "success": True,
        "path": "here.txt",
    }
    assert run(root, operation="exists", path="gone.txt")["result"] is False


def test_create_folders(root: Path) -> None:
    out = run(root, operation="create", path="new")
    assert out == {
        "result": "Directory created: new",
        "success": True,
        "path": "new",
        "created": True,
    }
    assert run(root, operation="create", path="new")["created"] is False
    fails(root, "folder x does not exist; set recursive", operation="create", path="x/y")
    assert run(root, operation="create", path="x/y", recursive=True)["created"] is True
    assert (root / "x/y").is_dir()
    (root / "file").write_text("x")
    fails(root, "a file has that name", operation="create", path="file")


def test_delete_files_and_folders(root: Path) -> None:
    (root / "f.txt").write_text("x")
    assert run(root, operation="delete", path="f.txt") == {
        "result": "Deleted: f.txt",
        "success": True,
        "path": "f.txt",
        "deleted": True,
    }
    assert run(root, operation="delete", path="f.txt")["deleted"] is False
    (root / "d/sub").mkdir(parents=True)
    (root / "d/sub/f.txt").write_text("x")
    fails(root, "folder d is not empty; set recursive: true", operation="delete", path="d")
    assert run(root, operation="delete", path="d", recursive=True)["deleted"] is True
    assert not (root / "d").exists()
    (root / "empty").mkdir()
    assert run(root, operation="delete", path="empty")["deleted"] is True


def test_delete_never_removes_the_root(root: Path) -> None:
    (root / "kept.txt").write_text("kept")
    for path in [".", "a/..", "./"]:
        fails(
            root,
            "refusing to delete the files root itself",
            operation="delete",
            path=path,
            recursive=True,
        )
    for operation in ("delete", "move"):
        fails(
            root,
            f"refusing to {operation} the files root itself",
            operation=operation,
            path="/",
            targetPath="elsewhere",
            recursive=True,
        )
    assert (root / "kept.txt").read_text() == "kept"
    assert sorted(p.name for p in root.iterdir()) == ["kept.txt"]


def test_the_root_spelled_absolute_is_the_root(root: Path) -> None:
    (root / "kept.txt").write_text("kept")
    assert run(root, operation="list", path=str(root))["files"] == ["/kept.txt"]
    for operation in ("delete", "move"):
        fails(
            root,
            f"refusing to {operation} the files root itself",
            operation=operation,
            path=str(root),
            targetPath="elsewhere",
            recursive=True,
        )
    assert (root / "kept.txt").read_text() == "kept"


def test_delete_of_a_link_removes_the_link_not_its_target(root: Path) -> None:
    (root / "target.txt").write_text("kept")
    (root / "link.txt").symlink_to(root / "target.txt")
    assert run(root, operation="delete", path="link.txt")["path"] == "link.txt"
    assert not (root / "link.txt").exists()
    assert (root / "target.txt").read_text() == "kept"


# --- copy and move ---------------------------------------------------------------------------


def test_copy_a_file(root: Path) -> None:
    (root / "a.txt").write_text("a")
    assert run(root, operation="copy", path="a.txt", targetPath="b.txt") == {
        "result": "File copied from a.txt to b.txt",
        "success": True,
        "path": "b.txt",
        "sourcePath": "a.txt",
        "destPath": "b.txt",
    }
    assert (root / "b.txt").read_text() == "a"
    assert (root / "a.txt").exists()


def test_copy_and_move_enforce_overwrite(root: Path) -> None:
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    for operation in ("copy", "move"):
        fails(root, "b.txt already exists", operation=operation, path="a.txt", targetPath="b.txt")
    assert (root / "b.txt").read_text() == "b"
    run(root, operation="copy", path="a.txt", targetPath="b.txt", overwrite=True)
    assert (root / "b.txt").read_text() == "a"
    (root / "a.txt").write_text("A")
    run(root, operation="move", path="a.txt", targetPath="b.txt", overwrite=True)
    assert (root / "b.txt").read_text() == "A"
    assert not (root / "a.txt").exists()


def test_copy_and_move_folders(root: Path) -> None:
    (root / "src/deep").mkdir(parents=True)
    (root / "src/deep/f.txt").write_text("f")
    run(root, operation="copy", path="src", targetPath="dst")
    assert (root / "dst/deep/f.txt").read_text() == "f"
    run(root, operation="move", path="src", targetPath="moved/src", createDirectories=True)
    assert (root / "moved/src/deep/f.txt").read_text() == "f"
    assert not (root / "src").exists()


def test_copy_and_move_refusals(root: Path) -> None:
    (root / "dir").mkdir()
    (root / "f.txt").write_text("x")
    fails(root, "needs targetPath", operation="copy", path="f.txt")
    fails(root, "source none.txt does not exist", operation="move", path="none.txt", targetPath="x")
    fails(root, "inside itself", operation="copy", path="dir", targetPath="dir/sub")
    fails(root, "inside itself", operation="move", path="dir", targetPath="dir/sub")
    fails(root, "both f.txt", operation="copy", path="f.txt", targetPath="./f.txt")
    fails(
        root,
        r"cannot replace a folder \(dir\) with a file",
        operation="copy",
        path="f.txt",
        targetPath="dir",
        overwrite=True,
    )
    fails(root, "folder no does not exist", operation="copy", path="f.txt", targetPath="no/f.txt")
    fails(root, "files root itself", operation="move", path=".", targetPath="elsewhere")


def test_move_a_link_moves_the_link(root: Path) -> None:
    (root / "target.txt").write_text("t")
    (root / "link.txt").symlink_to("target.txt")
    run(root, operation="move", path="link.txt", targetPath="renamed.txt")
    assert (root / "renamed.txt").is_symlink()
    assert (root / "target.txt").read_text() == "t"


# --- list ------------------------------------------------------------------------------------


@pytest.fixture
def images(root: Path) -> Path:
    """Atomiton's image flow layout: images/input with pictures, a text file, a subfolder."""
    folder = root / "images" / "input"
    (folder / "more").mkdir(parents=True)
    for name in ("a.jpg", "b.png", "c.gif", "notes.txt", ".hidden.png", "more/d.png"):
        (folder / name).write_bytes(b"12345")
    return folder


def test_list_a_folder(root: Path, images: Path) -> None:
    assert run(root, operation="list", path="images/input") == {
        "result": [f"images/input/{n}" for n in ("a.jpg", "b.png", "c.gif", "more", "notes.txt")],
        "files": [f"images/input/{n}" for n in ("a.jpg", "b.png", "c.gif", "more", "notes.txt")],
        "count": 5,
        "success": True,
        "path": "images/input",
    }


def test_list_with_atomitons_image_pattern_and_stats(root: Path, images: Path) -> None:
    out = run(
        root,
        operation="list",
        filePath="images/input",
        pattern="*.{jpg,png,gif}",
        recursive=False,
        includeStats=True,
    )
    assert [entry["name"] for entry in out["files"]] == ["a.jpg", "b.png", "c.gif"]
    assert out["files"][0]["path"] == "images/input/a.jpg"  # Atomiton's: `path` joined
    assert out["files"][0]["size"] == 5
    assert out["files"][0]["isDirectory"] is False
    assert ISO_MS.fullmatch(out["files"][0]["modified"])


def test_list_recursive_hidden_full_paths_and_filters(root: Path, images: Path) -> None:
    listed = run(root, operation="list", path="images/input", recursive=True, pattern="*.png")
    assert listed["files"] == ["images/input/b.png", "images/input/more/d.png"]
    hidden = run(root, operation="list", path="images/input", pattern="*.png", includeHidden=True)
    assert hidden["files"] == ["images/input/.hidden.png", "images/input/b.png"]
    full = run(root, operation="list", path="images/input", fullPaths=True, fileFilter=r"^[ab]\.")
    assert full["files"] == ["images/input/a.jpg", "images/input/b.png"]
    by_path = run(root, operation="list", path="images", recursive=True, pattern="input/more/*")
    assert by_path["files"] == ["images/input/more/d.png"]
    folders = run(root, operation="list", path="images/input", includeStats=True, pattern="more")
    assert folders["files"][0]["isDirectory"] is True


def test_list_of_a_missing_folder_or_a_file(root: Path) -> None:
    error = fails(root, "folder nope does not exist", operation="list", path="nope")
    assert error.retryable is False
    (root / "f.txt").write_text("x")
    fails(root, "f.txt is not a folder", operation="list", path="f.txt")


# --- hard links and deep paths (issue 15, item 8) ---------------------------------------------


def test_a_hard_link_to_a_file_outside_is_neither_read_nor_written(root: Path) -> None:
    outside = root.parent / "outside" / "secret.txt"
    (root / "inner").mkdir()
    (root / "inner" / "link.txt").hardlink_to(outside)
    error = fails(root, "has 2 hard links", path="inner/link.txt")
    assert isinstance(error, OutsideFilesRoot) and "secret" not in str(error)
    fails(root, "has 2 hard links", path="inner/link.txt", content="x", overwrite=True)
    fails(root, "has 2 hard links", operation="copy", path="inner/link.txt", targetPath="c.txt")
    fails(root, "has 2 hard links", operation="copy", path="inner", targetPath="copied")
    assert outside.read_text() == "secret"
    assert not (root / "c.txt").exists()
    # The link itself may still be found and removed: that touches no content.
    assert run(root, operation="exists", path="inner/link.txt")["exists"] is True
    assert run(root, operation="delete", path="inner/link.txt")["deleted"] is True
    assert outside.read_text() == "secret"


def test_a_path_deeper_than_the_limit_is_refused_naming_it(root: Path) -> None:
    deep = "/".join(["d"] * 2000)
    error = fails(root, "path has 2000 levels; at most 128 are allowed", operation="create",
                  path=deep, recursive=True)  # fmt: skip
    assert error.code == "INVALID_PARAMETERS" and not error.retryable
    shallow = "/".join(["d"] * 128)
    assert run(root, operation="create", path=shallow, recursive=True)["created"] is True
