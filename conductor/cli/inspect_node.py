"""`conductor inspect ID NODE`: one node of a live execution, with the inputs it receives
(debugging: what a node paused at a breakpoint will run on)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from conductor.cli.shared_redis import shared_settings
from conductor.exit_codes import EXIT_FAILED


@click.command()
@click.argument("execution_id")
@click.argument("node")
@click.option("--json", "as_json", is_flag=True, help="Print the node as one JSON object.")
def inspect(execution_id: str, node: str, as_json: bool) -> None:
    """Show node NODE of execution EXECUTION_ID: its status, parameters, the inputs it
    receives (once its upstream nodes have finished) and its output.

    Exit 1 when the execution or node is not in Redis (unknown or expired).
    """
    from conductor.inspection import Inspector, NodeNotFound  # noqa: PLC0415  (heavy)
    from conductor.services import Services  # noqa: PLC0415

    settings = shared_settings()
    services = Services.from_settings(settings)
    try:
        found = Inspector(services.stores, services.backend.node_outputs()).node(execution_id, node)
    except NodeNotFound as exc:
        click.echo(f"{exc} (unknown, or expired from Redis)", err=True)
        sys.exit(EXIT_FAILED)
    finally:
        services.close()
    click.echo(json.dumps(found, ensure_ascii=False) if as_json else describe(found))


def describe(node: dict[str, Any]) -> str:
    """The node for a terminal: a heading, then its inputs, parameters and output as JSON."""
    held = "  (breakpoint)" if node["breakpoint"] else ""
    lines = [f"{node['key']} [{node['type']}]: {node['status']}{held}"]
    if node["error"]:
        lines.append(f"error: [{node['error'].get('code')}] {node['error'].get('message')}")
    if node["inputs"] is None:
        lines.append(f"inputs: waiting for {', '.join(node['waiting_for'])}")
    else:
        lines.append("inputs: " + _json(node["inputs"]["ports"]))
    lines.append("parameters: " + _json(node["parameters"]))
    if node["output"] is not None:
        lines.append("output: " + _json(node["output"]))
    return "\n".join(lines)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
