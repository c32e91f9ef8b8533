"""An example Conductor node plugin (see docs/nodes.md)."""
