"""The Registry room: panel, dialogs and the lineage view."""
