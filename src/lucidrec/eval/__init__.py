"""Evaluation: ranking the held-out item against the catalog, metrics, groups and statistics."""
