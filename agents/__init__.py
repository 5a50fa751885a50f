"""Part of the studio package (mapped in by package-dir)."""
