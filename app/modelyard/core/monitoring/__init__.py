"""Monitoring: drift checks, watch folders, reports and retraining."""
