"""Stores: where cached results live. One protocol, a registry, and the local filesystem store."""
