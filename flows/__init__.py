"""Prefect flows: thin, compose tasks. Loaded by path by Prefect: import siblings as studio.*."""
