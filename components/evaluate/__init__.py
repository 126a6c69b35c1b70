"""evaluate step."""
