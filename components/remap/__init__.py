"""remap step."""
