"""The model layer: Blueprints, plans, graphs, problems and settings; imports nothing of ours."""
