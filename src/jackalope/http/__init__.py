"""The HTTP API front-end."""
