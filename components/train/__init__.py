"""train step."""
