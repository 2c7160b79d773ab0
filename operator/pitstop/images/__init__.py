"""Serving images: which image a revision runs, and building it when the spec has none."""
