"""Helpers shared by test modules: synthetic media, stand-in servers, scripted chat models."""
