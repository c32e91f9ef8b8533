"""Found by review: edit-fields templates may call JavaScript's globals; spreadsheet and image
turn a file system error into a clean, final node error that shows no host path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nodes.base import Node, NodeContext, NodeEnvironment
from nodes.edit_fields import EditFieldsNode
from nodes.errors import NodeError
from nodes.image import ImageNode
from nodes.shell_command import _scrubbed_env
from nodes.spreadsheet import SpreadsheetNode


def run(node: Node[Any], parameters: dict[str, Any], root: Path, data: Any = None) -> Any:
    context = NodeContext(
        execution_id="e",
        node_id="n",
        inputs={"data": data} if data is not None else {},
        data=data,
        environment=NodeEnvironment(files_root=root),
    )
    return node.run(node.parameters_model.model_validate(parameters), context)


def test_templates_may_call_javascript_globals(tmp_path: Path) -> None:
    values = {
        "rounded": "{{ Math.round(n) }}",
        "keys": "{{ Object.keys(o).length }}",
        "text": "{{ JSON.stringify(o) }}",
        "unknown": "{{ missing }}",
    }
    out = run(EditFieldsNode(), {"values": values}, tmp_path, {"n": 2.6, "o": {"a": 1}})
    result = out["result"]
    assert (result["rounded"], result["keys"], result["unknown"]) == ("3", "1", "")
    assert result["text"] == "{&quot;a&quot;:1}"  # HTML-escaped, as Atomiton's


@pytest.mark.parametrize(
    ("node", "parameters"),
    [
        (SpreadsheetNode(), {"path": "a" * 300 + ".csv"}),
        (ImageNode(), {"operation": "grayscale", "path": "a" * 300 + ".png"}),
    ],
    ids=["spreadsheet", "image"],
)
def test_a_file_system_error_is_final_and_names_no_host_path(
    node: Node[Any], parameters: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(NodeError) as caught:
        run(node, parameters, tmp_path)
    assert caught.value.retryable is False
    assert "File name too long" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)


def test_shell_environment_drops_every_variable_that_loads_code(tmp_path: Path) -> None:
    given = {
        "GREETING": "hi",
        "LD_AUDIT": "/x.so",
        "LD_PRELOAD": "/x.so",
        "DYLD_FRAMEWORK_PATH": "/x",
        "GCONV_PATH": "/x",
        "BASH_ENV": "/x.sh",
        "PYTHONPATH": "/x",
        "NODE_OPTIONS": "--require /x.js",
        "PERL5OPT": "-M/x",
    }
    env = _scrubbed_env(tmp_path, given)
    assert env["GREETING"] == "hi"
    assert not set(given) - {"GREETING"} & set(env)
