"""Conductor: run Atomiton Blueprints on Celery workers."""
