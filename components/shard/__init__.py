"""shard step."""
