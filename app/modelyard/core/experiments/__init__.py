"""Experiments: the tracking API, run queries and training."""
