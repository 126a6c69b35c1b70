"""push step."""
