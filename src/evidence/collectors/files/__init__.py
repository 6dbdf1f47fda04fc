"""Collectors that read files: scanner outputs and generic JSON imports."""
