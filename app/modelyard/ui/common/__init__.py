"""What the window's rooms share: the panel base, the job runner, workers, widgets, theme and settings."""
