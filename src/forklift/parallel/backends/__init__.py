"""Backends: one module each, behind the small protocol in :mod:`.base`."""
