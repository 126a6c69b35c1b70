"""Lineage: from a registered model version back to its run, its data and the champion before it."""
