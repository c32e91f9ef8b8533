"""The Celery app, its settings and the node task."""
