"""The model registry: versions and aliases, model files, reference profiles, lineage and model cards."""
