"""`conductor nodes`: the node catalogue, with each type's parameter JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import click

from nodes.registry import default_registry


@click.command()
@click.argument("node_type", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with full JSON Schemas).")
def nodes(node_type: str | None, as_json: bool) -> None:
    """List node types with their parameters (JSON Schema), or show one TYPE."""
    registry = default_registry()
    if node_type is not None and node_type not in registry:
        known = ", ".join(registry.names())
        raise click.BadParameter(f"unknown node type {node_type!r}; known: {known}")
    kinds = [registry.get(node_type)] if node_type else list(registry)
    entries = [catalogue_entry(kind) for kind in kinds]
    if as_json:
        click.echo(json.dumps(entries[0] if node_type else entries, indent=2))
        return
    for entry in entries:
        click.echo(f"{entry['type']} {entry['version']}: {entry['description']}")
        for line in parameter_lines(entry["parameters"]):
            click.echo(f"  {line}")
        click.echo()


def catalogue_entry(kind: Any) -> dict[str, Any]:
    """A node type as the catalogue shows it."""
    return {
        "type": kind.type_name,
        "version": kind.version,
        "description": kind.description,
        "parameters": kind.json_schema(),
    }


def _kind(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "|".join(map(str, prop["enum"]))
    if "type" in prop:
        return str(prop["type"])
    return "|".join(_kind(option) for option in prop.get("anyOf", [])) or "any"


def parameter_lines(schema: dict[str, Any]) -> list[str]:
    """One line per parameter: name, type, default and description."""
    required = set(schema.get("required", []))
    lines = []
    for name, prop in schema.get("properties", {}).items():
        kind = _kind(prop)
        default = "required" if name in required else f"default {json.dumps(prop.get('default'))}"
        note = f"  {prop['description']}" if "description" in prop else ""
        lines.append(f"{name:<22} {kind:<18} {default}{note}")
    return lines
