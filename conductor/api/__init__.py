"""The HTTP API (CONTRACT section 6)."""
