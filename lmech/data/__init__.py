"""Offline data sets and synthetic tasks (nothing is downloaded)."""
