"""Node base class, registry and built-in node types."""
