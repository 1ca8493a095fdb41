"""Small stdlib-only helpers shared by every room: byte sizes, CPU counts, safe arithmetic.

Imports nothing from forklift but :mod:`forklift.errors`.
"""
