"""Atomiton's parameters and output keys of edit-fields, transform, http-request, file-system
and spreadsheet, through a real worker: one Blueprint of many nodes per node family."""

from __future__ import annotations

import base64
import json
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from tests.e2e.conftest import RunBlueprint

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
CSV = "name,active,amount\nAda,true,10.5\nBob,false,99\n"
ROWS = [
    {"name": "Ada", "active": "true", "amount": "10.5"},
    {"name": "Bob", "active": "false", "amount": "99"},
]


def node(node_id: str, node_type: str, **parameters: Any) -> dict[str, Any]:
    """A Blueprint node."""
    return {"id": node_id, "type": node_type, "parameters": parameters}


def edge(
    source: str, target: str, port: str | None = None, key: str | None = None
) -> dict[str, Any]:
    """An edge into `port` (default: `default`), carrying the source's `key` when given."""
    found: dict[str, Any] = {"source": source, "target": target}
    if port is not None:
        found["targetHandle"] = port
    if key is not None:
        found["sourceHandle"] = key
    return found


def run(run_blueprint: RunBlueprint, nodes: list[Any], edges: list[Any]) -> dict[str, Any]:
    """Run the Blueprint (JSON is YAML) and return the sinks' outputs; it must succeed."""
    text = json.dumps({"id": "atomiton-data", "name": "data", "nodes": nodes, "edges": edges})
    result = run_blueprint(text)
    assert result["status"] == "succeeded", result["error"]
    outputs: dict[str, Any] = result["data"]
    return outputs


def value(source: str, text: Any) -> list[dict[str, Any]]:
    """Two nodes giving `text` as a whole `result` (edit-fields, then a transform picking it)."""
    return [
        node(source + "-src", "edit-fields", values={"v": text}, keepOnlySet=True),
        node(source, "transform", transformFunction="item => item.v"),
    ]


# --- edit-fields and transform ---------------------------------------------------------------


def test_edit_fields_parameters_and_output(run_blueprint: RunBlueprint) -> None:
    source = {"name": "Ada", "n": 5, "tag": "<b>"}
    nodes = [
        node("src", "edit-fields", values=source, keepOnlySet=True),
        node("set", "edit-fields", values={"added": 1, "name": "Bo"}),
        node("json", "edit-fields", values='{"a": 1, "b": [true, null]}'),
        node("keep", "edit-fields", values={"only": "{{name}}"}, keepOnlySet=True),
        node(
            "tpl",
            "edit-fields",
            keepOnlySet=True,
            values={
                "greeting": "Hi {{name}}!",
                "next": "{{ n + 1 }}",
                "missing": "[{{missing}}]",
                "escaped": "{{ tag }}",
                "now": "{{$now}}",
                "typed": "{{$input.n}}",
                "nested": {"kept": "{{name}}"},
            },
        ),
        node("copy", "edit-fields"),
        node("nothing", "edit-fields", keepOnlySet=True),
    ]
    targets = ["set", "json", "keep", "tpl", "copy", "nothing"]
    out = run(run_blueprint, nodes, [edge("src", target) for target in targets])
    assert out["set"] == {
        "result": {**source, "name": "Bo", "added": 1},
        "data": out["set"]["result"],
    }
    assert list(out["set"]["result"]) == ["name", "n", "tag", "added"]
    assert out["json"]["result"] == {**source, "a": 1, "b": [True, None]}
    assert out["keep"]["result"] == {"only": "Ada"}
    tpl = out["tpl"]["result"]
    assert ISO_MS.fullmatch(tpl.pop("now"))
    assert tpl == {
        "greeting": "Hi Ada!",
        "next": "6",
        "missing": "[]",
        "escaped": "&lt;b&gt;",
        "typed": 5,
        "nested": {"kept": "{{name}}"},
    }
    assert out["copy"]["result"] == source
    assert out["nothing"]["result"] == {}


def transform(node_id: str, data: list[Any], operation: str, **parameters: Any) -> dict[str, Any]:
    """A transform over its `data` parameter."""
    return node(node_id, "transform", data=data, operation=operation, **parameters)


TRANSFORMS: list[tuple[dict[str, Any], Any]] = [
    (transform("map", [1, 2, 3], "map", transformFunction="item => item * 2"), [2, 4, 6]),
    (
        transform("path", [{"price": 1}, {"price": 2}], "map", transformFunction="item.price"),
        [1, 2],
    ),
    (
        transform("filter", [1, 2, 3, 4], "filter", transformFunction="item => item % 2 === 0"),
        [2, 4],
    ),
    (
        transform(
            "reduce",
            [1, 2, 3],
            "reduce",
            transformFunction="({acc, item}) => acc + item",
            reduceInitial="10",
        ),
        16,
    ),
    (
        transform(
            "reduce-text",
            [1, 2, 3],
            "reduce",
            transformFunction="({acc, item}) => acc + item",
            reduceInitial="",
        ),
        "123",
    ),
    (
        transform("sort", [{"k": 1}, {"k": "10"}, {"k": 9}], "sort", sortKey="k"),
        [{"k": 1}, {"k": 9}, {"k": "10"}],
    ),
    (transform("sort-desc", ["a", "c", "b"], "sort", sortDirection="desc"), ["c", "b", "a"]),
    (
        transform("group", [{"g": "x"}, {"g": "y"}, {"g": "x", "i": 1}], "group", groupKey="g"),
        {"x": [{"g": "x"}, {"g": "x", "i": 1}], "y": [{"g": "y"}]},
    ),
    (
        transform("group-sort-key", [{"g": 2}, {"h": 1}], "group", sortKey="g"),
        {"2": [{"g": 2}], "undefined": [{"h": 1}]},
    ),
    (transform("flatten", [[1, [2, [3]]]], "flatten", flattenDepth=2), [1, 2, [3]]),
    (transform("unique", [1, {"a": 1}, 1, {"a": 1}], "unique"), [1, {"a": 1}]),
    (transform("reverse", [1, 2, 3], "reverse"), [3, 2, 1]),
    (transform("limit", list(range(12)), "limit"), list(range(10))),
    (transform("limit-count", list(range(12)), "limit", limitCount=2), [0, 1]),
    (transform("skip", [1, 2, 3], "skip", skipCount=2), [3]),
    (transform("slice", [1, 2, 3, 4, 5], "slice", sliceStart=1, sliceEnd=-1), [2, 3, 4]),
    (transform("slice-all", [1, 2, 3], "slice"), [1, 2, 3]),
]


def test_transform_operations_parameters_and_outputs(run_blueprint: RunBlueprint) -> None:
    nodes = [spec for spec, _ in TRANSFORMS]
    nodes += [
        transform("port-src", [1, 2, 3], "limit"),
        transform("port", [9], "reverse"),  # the port `data` wins over the parameter
        *value("fn-src", "item => item + 100"),
        transform("fn", [1, 2], "map"),  # the input-only key `function`
        node("main", "transform", operation="reverse"),  # no data: the main input
    ]
    edges = [
        edge("port-src", "port", "data"),
        edge("fn-src-src", "fn-src"),
        edge("fn-src", "fn", "function", "result"),
        edge("port-src", "main"),
    ]
    out = run(run_blueprint, nodes, edges)
    for spec, expected in TRANSFORMS:
        output = out[spec["id"]]
        assert output["result"] == expected, spec["id"]
        assert output["operation"] == spec["parameters"]["operation"]
        assert output["inputCount"] == len(spec["parameters"]["data"])
        count = len(expected) if isinstance(expected, list | dict) else 1
        assert output["outputCount"] == count, spec["id"]
        assert output["success"] is True
        assert output["data"] == expected
    assert out["port"]["result"] == [3, 2, 1]
    assert out["fn"]["result"] == [101, 102]
    assert out["main"]["result"] == [3, 2, 1]


# --- http-request ----------------------------------------------------------------------------


class Echo:
    """A local server that answers with what it received, as JSON."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                path, _, query = self.path.partition("?")
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size).decode() if size else None
                if path == "/text":
                    self._send(200, "text/plain; charset=utf-8", "héllo".encode())
                elif path == "/bin":
                    self._send(200, "application/octet-stream", bytes(range(8)))
                elif path == "/missing":
                    self._send(404, "text/plain", b"nope")
                elif path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/text")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    seen = {
                        "method": self.command,
                        "path": path,
                        "query": query,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                    self._send(200, "application/json", json.dumps(seen).encode())

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def echo() -> Iterator[Echo]:
    """The echo server, stopped after the test."""
    server = Echo()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_http_request_parameters_and_outputs(run_blueprint: RunBlueprint, echo: Echo) -> None:
    url = echo.url

    def http(node_id: str, **parameters: Any) -> dict[str, Any]:
        return node(node_id, "http-request", maxRetries=0, **parameters)

    nodes = [
        http("get", url=f"{url}/echo?x=1", headers='{"X-A": "1"}'),
        http("post-text", method="POST", url=f"{url}/echo", body='{"a": 1}'),
        http("put", method="PUT", url=f"{url}/echo", body="plain", headers={"X-B": "2"}),
        http("delete", method="DELETE", url=f"{url}/echo", body="gone"),
        http("post-object", method="POST", url=f"{url}/echo"),
        http("query", url=f"{url}/echo?keep=1"),
        http("basic", url=f"{url}/echo"),
        http("bearer", url=f"{url}/echo"),
        http("headers-port", url=f"{url}/echo", headers={"X-A": "1"}),
        http("url-port", url="http://unused.invalid/"),
        http("method-port", url=f"{url}/echo"),
        http("not-found", url=f"{url}/missing", failOnError=False),
        http("binary", url=f"{url}/bin"),
        http("redirect", url=f"{url}/redirect"),
        node("object", "edit-fields", values={"a": 1}, keepOnlySet=True),
        node("params", "edit-fields", values={"q": "a b"}, keepOnlySet=True),
        node(
            "basic-auth", "edit-fields", values={"type": "basic", "username": "u", "password": "p"}
        ),
        node("bearer-auth", "edit-fields", values={"type": "bearer", "token": "tok"}),
        node("headers", "edit-fields", values={"X-C": "3"}, keepOnlySet=True),
        *value("url", f"{url}/text"),
        *value("method", "PUT"),
    ]
    edges = [
        edge("object", "post-object", "body", "result"),
        edge("params", "query", "params", "result"),
        edge("basic-auth", "basic", "auth", "result"),
        edge("bearer-auth", "bearer", "auth", "result"),
        edge("headers", "headers-port", "headers", "result"),
        edge("url-src", "url"),
        edge("url", "url-port", "url", "result"),
        edge("method-src", "method"),
        edge("method", "method-port", "method", "result"),
    ]
    out = run(run_blueprint, nodes, edges)
    get = out["get"]
    assert get["result"]["method"] == "GET"
    assert get["result"]["query"] == "x=1"
    assert get["result"]["headers"]["x-a"] == "1"
    assert (get["status"], get["statusText"], get["success"], get["ok"]) == (200, "OK", True, True)
    assert get["headers"]["content-type"] == "application/json"
    assert isinstance(get["duration"], int) and get["duration"] >= 0
    assert get["url"] == f"{url}/echo?x=***"  # query values masked (docs/nodes.md, Limits)
    assert get["data"] == get["result"]

    post = out["post-text"]["result"]
    assert (post["method"], post["body"]) == ("POST", '{"a": 1}')  # JSON text stays text
    assert post["headers"]["content-type"].startswith("text/plain")
    put = out["put"]["result"]
    assert (put["method"], put["body"], put["headers"]["x-b"]) == ("PUT", "plain", "2")
    deleted = out["delete"]["result"]
    assert (deleted["method"], deleted["body"]) == ("DELETE", "gone")  # Atomiton sends none
    sent = out["post-object"]["result"]
    assert json.loads(sent["body"]) == {"a": 1}
    assert sent["headers"]["content-type"] == "application/json"
    assert out["query"]["result"]["query"] == "keep=1&q=a+b"
    assert out["query"]["url"] == f"{url}/echo?keep=***&q=***"  # values masked
    basic = base64.b64encode(b"u:p").decode()
    assert out["basic"]["result"]["headers"]["authorization"] == f"Basic {basic}"
    assert out["bearer"]["result"]["headers"]["authorization"] == "Bearer tok"
    port_headers = out["headers-port"]["result"]["headers"]
    assert port_headers["x-c"] == "3"
    assert "x-a" not in port_headers  # the port replaces the parameter; Atomiton overlays
    assert out["url-port"]["result"] == "héllo"
    assert out["url-port"]["url"] == f"{url}/text"
    assert out["method-port"]["result"]["method"] == "PUT"
    missing = out["not-found"]
    assert (missing["status"], missing["statusText"], missing["result"]) == (
        404,
        "Not Found",
        "nope",
    )
    assert missing["success"] is missing["ok"] is False
    assert base64.b64decode(out["binary"]["result"]) == bytes(range(8))
    redirect = out["redirect"]
    assert (redirect["result"], redirect["status"]) == ("héllo", 200)
    assert (redirect["url"], redirect["finalUrl"]) == (f"{url}/redirect", f"{url}/text")


# --- file-system and spreadsheet -------------------------------------------------------------


@pytest.fixture
def base(data_dir: Path) -> Iterator[str]:
    """A fresh folder under the files root, named as Atomiton would: from the root, `/x`."""
    name = f"atomiton-data-{uuid.uuid4().hex[:8]}"
    folder = data_dir / "files" / name
    for path, text in {
        "r.txt": "read me",
        "s.csv": CSV,
        "s.txt": CSV,
        "s.tsv": CSV.replace(",", "\t"),
        "exists.txt": "",
        "del.txt": "x",
        "deldir/f.txt": "x",
        "copy-src.txt": "copy",
        "copy-src2.txt": "copy2",
        "move-src.txt": "move",
        "list/a.txt": "a",
        "list/b.txt": "b",
        "list/sub/c.txt": "c",
        "list/.hidden": "h",
    }.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "First"
    for row in (["a", "b", "c"], [1, 2, 3], [4, 5, 6]):
        first.append(row)
    book.create_sheet("Second").append(["only"])
    book["Second"].append(["x"])
    book.save(folder / "book.xlsx")
    yield name
    shutil.rmtree(folder)


def test_file_system_operations_and_outputs(
    run_blueprint: RunBlueprint, base: str, data_dir: Path
) -> None:
    here = data_dir / "files" / base

    def fs(node_id: str, operation: str, path: str, **parameters: Any) -> dict[str, Any]:
        return node(
            node_id, "file-system", operation=operation, path=f"/{base}/{path}", **parameters
        )

    nodes = [
        fs("read", "read", "r.txt"),
        fs("write", "write", "out/w.txt", content="hello", createDirectories=True),
        fs("source", "read", "r.txt"),
        fs("write-input", "write", "from-input.txt"),
        fs("list", "list", "list"),
        fs("list-all", "list", "list", recursive=True),
        fs("exists", "exists", "exists.txt"),
        fs("absent", "exists", "nothing.txt"),
        fs("create", "create", "newdir"),
        fs("create-again", "create", "list"),
        fs("create-deep", "create", "deep/er", recursive=True),
        fs("delete", "delete", "del.txt"),
        fs("delete-missing", "delete", "never.txt"),
        fs("delete-dir", "delete", "deldir", recursive=True),
        fs("copy", "copy", "copy-src.txt", targetPath=f"/{base}/copied.txt"),
        fs("move", "move", "move-src.txt", targetPath=f"/{base}/moved.txt"),
        fs("copy-port", "copy", "copy-src2.txt"),
        *value("target", f"/{base}/copied2.txt"),
    ]
    edges = [
        edge("source", "write-input"),
        edge("target-src", "target"),
        edge("target", "copy-port", "targetPath", "result"),
    ]
    out = run(run_blueprint, nodes, edges)

    read = out["read"]
    assert (read["result"], read["content"], read["success"]) == ("read me", "read me", True)
    assert (read["path"], read["size"]) == (f"{base}/r.txt", 7)
    assert ISO_MS.fullmatch(read["modified"])
    assert out["write"] == {
        "result": f"File written: {base}/out/w.txt",
        "success": True,
        "path": f"{base}/out/w.txt",
        "size": 5,
    }
    assert (here / "out" / "w.txt").read_text() == "hello"
    assert (here / "from-input.txt").read_text() == "read me"  # the input, when no content
    listed = out["list"]
    entries = [f"/{base}/list/{name}" for name in ("a.txt", "b.txt", "sub")]
    assert listed["result"] == listed["files"] == entries  # Atomiton's: `path` joined
    assert (listed["count"], listed["path"], listed["success"]) == (3, f"{base}/list", True)
    assert out["list-all"]["files"] == [*entries, f"/{base}/list/sub/c.txt"]
    assert out["exists"] == {
        "result": True,
        "exists": True,
        "success": True,
        "path": f"{base}/exists.txt",
    }
    assert (out["absent"]["result"], out["absent"]["exists"]) == (False, False)
    assert out["create"] == {
        "result": f"Directory created: {base}/newdir",
        "success": True,
        "path": f"{base}/newdir",
        "created": True,
    }
    assert (out["create-again"]["result"], out["create-again"]["created"]) == (
        f"Directory already exists: {base}/list",
        False,
    )
    assert (here / "deep" / "er").is_dir() and out["create-deep"]["created"] is True
    assert out["delete"] == {
        "result": f"Deleted: {base}/del.txt",
        "success": True,
        "path": f"{base}/del.txt",
        "deleted": True,
    }
    assert (out["delete-missing"]["result"], out["delete-missing"]["deleted"]) == (
        f"Path does not exist: {base}/never.txt",
        False,
    )
    assert not (here / "deldir").exists() and out["delete-dir"]["deleted"] is True
    assert out["copy"] == {
        "result": f"File copied from {base}/copy-src.txt to {base}/copied.txt",
        "success": True,
        "path": f"{base}/copied.txt",
        "sourcePath": f"{base}/copy-src.txt",
        "destPath": f"{base}/copied.txt",
    }
    assert out["move"]["result"] == f"Moved from {base}/move-src.txt to {base}/moved.txt"
    assert (out["move"]["sourcePath"], out["move"]["destPath"], out["move"]["path"]) == (
        f"{base}/move-src.txt",
        f"{base}/moved.txt",
        f"{base}/moved.txt",
    )
    assert (here / "moved.txt").read_text() == "move" and not (here / "move-src.txt").exists()
    assert (here / "copied2.txt").read_text() == "copy2"  # targetPath from an input port


def test_spreadsheet_parameters_and_outputs(run_blueprint: RunBlueprint, base: str) -> None:
    def sheet(node_id: str, **parameters: Any) -> dict[str, Any]:
        return node(node_id, "spreadsheet", **parameters)

    nodes = [
        sheet("path", path=f"/{base}/s.csv"),
        sheet("alias", filePath=f"/{base}/s.csv", hasHeaders=False),
        sheet("data", data=CSV),
        node("file", "file-system", operation="read", path=f"/{base}/s.csv"),
        sheet("data-port"),
        sheet("delimiter", data="a;b\n1;2\n", delimiter=";"),
        sheet("blank-kept", data="a,b\n\n1,2\n", skipEmptyLines=False),
        sheet("tsv", path=f"/{base}/s.tsv"),
        sheet("named", path=f"/{base}/book.xlsx", sheetName="Second"),
        sheet("indexed", path=f"/{base}/book.xlsx", sheetIndex=1),
        sheet("range", path=f"/{base}/book.xlsx", range="A1:B2", format="xlsx"),
        sheet("format", path=f"/{base}/s.txt", format="csv"),
        sheet("path-wins", path=f"/{base}/s.csv", data="x\n1\n"),
    ]
    out = run(run_blueprint, nodes, [edge("file", "data-port", "data")])

    csv_out = out["path"]
    assert csv_out["records"] == csv_out["result"] == ROWS
    assert (csv_out["headers"], csv_out["rowCount"], csv_out["format"]) == (
        ["name", "active", "amount"],
        2,
        "csv",
    )
    assert (csv_out["sheetName"], csv_out["sheetNames"], csv_out["delimiter"]) == (
        "Sheet1",
        ["Sheet1"],
        ",",
    )
    assert "sheetNames" in csv_out and "result" in csv_out
    assert out["alias"]["records"][0] == ["name", "active", "amount"]
    assert out["alias"]["headers"] == ["0", "1", "2"]
    assert out["data"]["records"] == out["data-port"]["records"] == ROWS
    assert (out["data"]["format"], out["data"]["path"]) == ("csv", None)
    assert out["delimiter"]["records"] == [{"a": "1", "b": "2"}]
    assert out["delimiter"]["delimiter"] == ";"
    assert out["blank-kept"]["records"] == [{"a": "", "b": ""}, {"a": "1", "b": "2"}]
    assert (out["tsv"]["records"], out["tsv"]["delimiter"]) == (ROWS, "\t")
    named = out["named"]
    assert (named["records"], named["sheetName"]) == ([{"only": "x"}], "Second")
    assert named["sheetNames"] == ["First", "Second"]
    assert "delimiter" not in named
    assert out["indexed"]["sheetName"] == "Second"
    assert (out["range"]["records"], out["range"]["headers"]) == ([{"a": 1, "b": 2}], ["a", "b"])
    assert out["format"]["records"] == ROWS
    assert out["path-wins"]["records"] == ROWS


FAILURES: list[tuple[dict[str, Any], str]] = [
    (node("f", "spreadsheet"), "spreadsheet needs `path` (a file) or `data`"),
    (node("f", "spreadsheet", data="a", format="xls"), "xls is not supported"),
    (node("f", "transform", data=[1], operation="group"), "groupKey or sortKey is required"),
    (node("f", "file-system", operation="read", path="/no/such.txt"), "no/such.txt does not exist"),
    (node("f", "file-system", operation="read", path="/../x"), "outside the files root"),
    (node("f", "edit-fields", values={"x": "{{ a + }}"}), "values.x: template {{ a + }}"),
]


@pytest.mark.parametrize(("spec", "message"), FAILURES, ids=[m for _, m in FAILURES])
def test_failures_name_what_is_wrong(
    run_blueprint: RunBlueprint, spec: dict[str, Any], message: str
) -> None:
    result = run_blueprint(json.dumps({"id": "f", "name": "f", "nodes": [spec], "edges": []}))
    assert result["status"] == "failed"
    assert message in result["error"]["message"]
    assert result["error"]["nodeId"] == "f"
