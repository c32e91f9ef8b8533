"""Storage: Blueprint store, execution state, blobs and Redis keys."""
