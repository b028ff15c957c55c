"""Validation, quarantine, cleaning, the per-interval extract store and point-in-time features."""
