"""The Monitoring room: panel and dialogs."""
