"""Benchmark tooling (importable; the scripts in scripts/ are thin CLIs over these modules)."""
