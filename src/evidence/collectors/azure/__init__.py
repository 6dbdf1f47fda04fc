"""Collectors that read Azure (Resource Manager, Policy Insights, Key Vault, Graph)."""
