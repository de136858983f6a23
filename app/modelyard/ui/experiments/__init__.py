"""The Experiments room: panel, train dialog, compare and evaluation views, runs table."""
