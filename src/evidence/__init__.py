"""evidence: collect compliance evidence, prove it, and map it to controls."""

__version__ = "0.1.0"
