"""Small stdlib-only helpers shared by every room: byte sizes, CPU counts, safe arithmetic,
atomic writes, names for messages (:mod:`.naming`).

Imports nothing from forklift but :mod:`forklift.errors`.
"""
