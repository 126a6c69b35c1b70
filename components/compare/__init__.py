"""compare step."""
