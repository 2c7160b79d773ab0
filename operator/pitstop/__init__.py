"""Pitstop: swap the model while the car keeps running."""
