"""Pure core: records, canonical JSON, digests, Merkle trees, artifacts, observations.

Nothing here does I/O beyond writing to a file object it is handed.
"""
