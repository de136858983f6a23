"""The Datasets room: panel, import dialog, profile and column detail."""
