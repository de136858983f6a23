"""The Pipelines panel: pipelines as graphs, their runs live, history, logs, Run with parameters."""
