"""`file-system`: read, write, list, copy, move and delete files under the files root."""

from __future__ import annotations

import base64
import binascii
import json
import os
import posixpath
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

from conductor.model.blob_text import BlobText
from nodes.base import Node, NodeContext
from nodes.errors import InvalidParameters, NodeError
from nodes.file_streams import blob_as_string, read_streamed, write_streamed
from nodes.file_system_parameters import FileSystemParameters, expand_braces
from nodes.files import refuse_hard_links, resolve_in_root


@dataclass(frozen=True)
class _Files:
    """The files root, and how paths under it are found and shown."""

    root: Path

    def locate(self, path: str, *, content: bool = True) -> Path:
        """`path` resolved, symlinks followed; refused when it leaves the root, or when its
        `content` is to be read or written and it has other hard links."""
        return resolve_in_root(self.root, path, content=content)

    def entry(self, path: str) -> Path:
        """`path` itself: a final symlink is not followed (delete and move act on the link,
        and on a hard link, which touches no content)."""
        target = self.locate(path, content=False)
        pure = PurePosixPath(path)
        if pure.name in ("", ".", "..") or target == self.root:
            return target
        link = self.locate(str(pure.parent), content=False) / pure.name
        return link if link.is_symlink() else target

    def show(self, path: Path) -> str:
        """`path` relative to the root: outputs never show the host's folders."""
        relative = path.relative_to(self.root)
        return relative.as_posix() if relative.parts else "."

    def holds(self, path: Path) -> bool:
        """Whether `path`, symlinks followed, stays under the root."""
        resolved = path.resolve()
        return resolved == self.root or self.root in resolved.parents


class FileSystemNode(Node[FileSystemParameters]):
    """Read, write, list, create, delete, copy and move files, confined to the files root.

    Unlike Atomiton, `overwrite` is enforced for write, copy and move, paths in outputs are
    relative to the files root, and `list` hides names starting with a dot unless
    `includeHidden` (as Atomiton does) and leaves out symlinks that point outside the root.
    """

    type_name = "file-system"
    description = "Read, write and list files under the files root"
    parameters_model = FileSystemParameters
    streams_blobs = True  # a large file is read into a blob and written from one

    def run(self, params: FileSystemParameters, context: NodeContext) -> Mapping[str, Any]:
        files = _Files(context.environment.files_root.resolve())
        try:
            return _OPERATIONS[params.operation](params, context, files)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            message = f"{params.operation} {params.path!r} failed: {reason}"
            raise NodeError(message, retryable=False) from None


def _read(params: FileSystemParameters, context: NodeContext, files: _Files) -> dict[str, Any]:
    target = files.locate(params.path)
    shown = files.show(files.entry(params.path))
    _require_file(target, shown)
    stat = target.stat()
    content: str | BlobText | None = read_streamed(
        target, params.encoding, shown, context.environment
    )
    if content is None:
        content = _decode(target.read_bytes(), params.encoding, shown)
    return {
        "result": content,
        "content": content,
        "success": True,
        "path": shown,
        "size": stat.st_size,
        "modified": _iso(stat.st_mtime),
    }


def _write(params: FileSystemParameters, context: NodeContext, files: _Files) -> dict[str, Any]:
    target = files.locate(params.path)
    shown = files.show(files.entry(params.path))
    content = _content(params, context)
    payload = content if isinstance(content, BlobText) else _encode(content, params.encoding)
    if target.is_dir():
        raise _failed(f"cannot write {shown}: it is a folder")
    _ensure_parent(target, params.createDirectories, files)
    try:
        if isinstance(payload, BlobText):  # a large string: streamed from its blob
            size = write_streamed(target, payload, params.encoding, params.overwrite)
        else:
            with target.open("wb" if params.overwrite else "xb") as stream:
                size = stream.write(payload)
    except FileExistsError:
        raise _exists(shown) from None
    return {"result": f"File written: {shown}", "success": True, "path": shown, "size": size}


def _exists_op(params: FileSystemParameters, context: NodeContext, files: _Files) -> dict[str, Any]:
    exists = files.locate(params.path, content=False).exists()
    shown = files.show(files.entry(params.path))
    return {"result": exists, "exists": exists, "success": True, "path": shown}


def _create(params: FileSystemParameters, context: NodeContext, files: _Files) -> dict[str, Any]:
    target = files.locate(params.path)
    shown = files.show(target)
    if target.is_dir():
        message = f"Directory already exists: {shown}"
        return {"result": message, "success": True, "path": shown, "created": False}
    if target.exists():
        raise _failed(f"cannot create folder {shown}: a file has that name")
    parents = params.recursive or params.createDirectories
    if not parents and not target.parent.is_dir():
        shown_parent = files.show(target.parent)
        raise _failed(f"folder {shown_parent} does not exist; set recursive: true to create it")
    target.mkdir(parents=parents, exist_ok=True)
    message = f"Directory created: {shown}"
    return {"result": message, "success": True, "path": shown, "created": True}


def _delete(params: FileSystemParameters, context: NodeContext, files: _Files) -> dict[str, Any]:
    entry = files.entry(params.path)
    shown = files.show(entry)
    if entry == files.root:
        raise _failed("refusing to delete the files root itself")
    if not entry.exists() and not entry.is_symlink():
        message = f"Path does not exist: {shown}"
        return {"result": message, "success": True, "path": shown, "deleted": False}
    if entry.is_symlink() or not entry.is_dir():
        entry.unlink()
    elif params.recursive:
        shutil.rmtree(entry)
    elif any(entry.iterdir()):
        raise _failed(f"folder {shown} is not empty; set recursive: true to delete its contents")
    else:
        entry.rmdir()
    return {"result": f"Deleted: {shown}", "success": True, "path": shown, "deleted": True}


def _copy(params: FileSystemParameters, context: NodeContext, files: _Files) -> dict[str, Any]:
    source, dest = files.locate(params.path), files.locate(_target_path(params))
    shown_source, shown_dest = files.show(files.entry(params.path)), files.show(dest)
    _check_transfer(source, dest, shown_source, shown_dest, params.overwrite)
    _ensure_parent(dest, params.createDirectories, files)
    if source.is_dir():
        # Links are copied as links: following them could pull outside files into the root.
        shutil.copytree(
            source, dest, symlinks=True, dirs_exist_ok=True, copy_function=_copy_one_link
        )
    else:
        shutil.copyfile(source, dest)
    kind = "Directory" if source.is_dir() else "File"
    message = f"{kind} copied from {shown_source} to {shown_dest}"
    return _transferred(message, shown_source, shown_dest)


def _move(params: FileSystemParameters, context: NodeContext, files: _Files) -> dict[str, Any]:
    source, dest = files.entry(params.path), files.locate(_target_path(params))
    shown_source, shown_dest = files.show(source), files.show(dest)
    if source == files.root:
        raise _failed("refusing to move the files root itself")
    _check_transfer(source, dest, shown_source, shown_dest, params.overwrite)
    _ensure_parent(dest, params.createDirectories, files)
    if dest.is_dir():  # overwrite: a folder replaces a folder
        shutil.rmtree(dest)
    shutil.move(source, dest)
    message = f"Moved from {shown_source} to {shown_dest}"
    return _transferred(message, shown_source, shown_dest)


def _list(params: FileSystemParameters, context: NodeContext, files: _Files) -> dict[str, Any]:
    folder = files.locate(params.path)
    shown = files.show(files.entry(params.path))
    if not folder.exists():
        raise _missing(f"folder {shown} does not exist")
    if not folder.is_dir():
        raise _failed(f"{shown} is not a folder")
    found = _walk(folder, params.recursive, params.includeHidden, files)
    keep = _matcher(params)
    prefix = "/" + shown if params.path.startswith("/") else shown
    entries = [
        _describe(path, folder, prefix, params, files)
        for path in sorted(found)
        if keep(path.relative_to(folder))
    ]
    return {
        "result": entries,
        "files": entries,
        "count": len(entries),
        "success": True,
        "path": shown,
    }


_OPERATIONS: dict[str, Callable[[FileSystemParameters, NodeContext, _Files], dict[str, Any]]] = {
    "read": _read,
    "write": _write,
    "exists": _exists_op,
    "create": _create,
    "delete": _delete,
    "copy": _copy,
    "move": _move,
    "list": _list,
}


def _walk(folder: Path, recursive: bool, hidden: bool, files: _Files) -> Iterator[Path]:
    """Entries under `folder`; symlinked folders are not entered, links out are left out."""
    with os.scandir(folder) as scan:
        items = list(scan)
    for item in items:
        if not hidden and item.name.startswith("."):
            continue
        path = Path(item.path)
        if item.is_symlink() and not files.holds(path):
            continue
        yield path
        if recursive and item.is_dir(follow_symlinks=False):
            yield from _walk(path, recursive, hidden, files)


def _matcher(params: FileSystemParameters) -> Callable[[Path], bool]:
    """A `pattern` with a slash matches the path from the listed folder, else the name."""
    patterns = expand_braces(params.pattern) if params.pattern else []
    regex = re.compile(params.fileFilter) if params.fileFilter else None

    def keep(relative: Path) -> bool:
        subject = relative.as_posix() if "/" in (params.pattern or "") else relative.name
        if patterns and not any(fnmatchcase(subject, p) for p in patterns):
            return False
        return regex is None or regex.search(relative.name) is not None

    return keep


def _describe(
    path: Path, folder: Path, prefix: str, params: FileSystemParameters, files: _Files
) -> str | dict[str, Any]:
    """An entry as Atomiton lists it: the listed `path` joined with the entry (so it can be
    handed to the next node); with `fullPaths`, from the files root."""
    relative = path.relative_to(folder).as_posix()
    shown = files.show(path) if params.fullPaths else posixpath.normpath(f"{prefix}/{relative}")
    if not params.includeStats:
        return shown
    try:
        stat = path.stat()
    except OSError:  # a dangling link
        stat = path.lstat()
    return {
        "name": path.name,
        "path": shown,
        "size": stat.st_size,
        "modified": _iso(stat.st_mtime),
        "isDirectory": path.is_dir(),
    }


def _content(params: FileSystemParameters, context: NodeContext) -> str | BlobText:
    """The text to write: `content`, or the node's input; non-strings as JSON."""
    content = params.content if params.content is not None else context.data
    if content is None:
        raise InvalidParameters("write needs `content` (or an input to write)")
    if isinstance(content, str | BlobText):
        return content
    return json.dumps(content, indent=2, ensure_ascii=False, default=blob_as_string)


def _encode(text: str, encoding: str) -> bytes:
    try:
        if encoding == "base64":
            return base64.b64decode(text, validate=True)
        if encoding == "hex":
            return bytes.fromhex(text)
        codec = {"utf8": "utf-8", "ascii": "ascii", "binary": "latin-1"}[encoding]
        return text.encode(codec)
    except (binascii.Error, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise _failed(f"content cannot be written with encoding {encoding}: {exc}") from None


def _decode(raw: bytes, encoding: str, shown: str) -> str:
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    if encoding == "hex":
        return raw.hex()
    codec = {"utf8": "utf-8", "ascii": "ascii", "binary": "latin-1"}[encoding]
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        message = f"{shown} is not {encoding} text ({exc.reason} at byte {exc.start}); "
        raise _failed(message + "read it with encoding: base64") from None


def _require_file(target: Path, shown: str) -> None:
    if not target.exists():
        raise _missing(f"file {shown} does not exist")
    if not target.is_file():
        raise _failed(f"{shown} is not a file")


def _ensure_parent(target: Path, create: bool, files: _Files) -> None:
    parent = target.parent
    if parent.is_dir():
        return
    if not create:
        shown = files.show(parent)
        raise _failed(f"folder {shown} does not exist; set createDirectories: true to create it")
    parent.mkdir(parents=True, exist_ok=True)


def _check_transfer(
    source: Path, dest: Path, shown_source: str, shown_dest: str, overwrite: bool
) -> None:
    """Refuse what copy and move cannot do: no source, a folder into itself, a clobber."""
    if not source.exists() and not source.is_symlink():
        raise _missing(f"source {shown_source} does not exist")
    if source == dest:
        raise _failed(f"source and target are both {shown_source}")
    source_is_dir = source.is_dir() and not source.is_symlink()
    if source_is_dir and source in dest.parents:
        raise _failed(f"cannot put folder {shown_source} inside itself ({shown_dest})")
    if not dest.exists():
        return
    if not overwrite:
        raise _exists(shown_dest)
    if dest.is_dir() != source_is_dir:
        kinds = ("a file", "a folder")
        raise _failed(
            f"cannot replace {kinds[dest.is_dir()]} ({shown_dest}) with {kinds[source_is_dir]}"
        )


def _copy_one_link(source: str, dest: str) -> None:
    """shutil.copy2 for a folder's files, refusing one with other hard links."""
    refuse_hard_links(Path(source), os.path.basename(source))
    shutil.copy2(source, dest)


def _target_path(params: FileSystemParameters) -> str:
    if params.targetPath is None:
        raise InvalidParameters(f"{params.operation} needs targetPath")
    return params.targetPath


def _transferred(message: str, shown_source: str, shown_dest: str) -> dict[str, Any]:
    return {
        "result": message,
        "success": True,
        "path": shown_dest,
        "sourcePath": shown_source,
        "destPath": shown_dest,
    }


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _failed(message: str) -> NodeError:
    return NodeError(message, retryable=False)


def _missing(message: str) -> NodeError:
    return NodeError(message, code="EXECUTION_FAILED", retryable=False)


def _exists(shown: str) -> NodeError:
    return NodeError(f"{shown} already exists; set overwrite: true to replace it", retryable=False)
