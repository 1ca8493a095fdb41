"""progress/ imports only the standard library, forklift.errors and forklift._support (and
tqdm, lazily, for its bar). pyproject.toml's import-linter contract forbids forklift's other
rooms and the third-party packages forklift uses; this checks the rest of the promise - every
outside import is the standard library's - which a forbidden-list cannot say."""

from __future__ import annotations

import sys

import grimp

ALLOWED_THIRD_PARTY = {"tqdm"}  # the progress bar's, imported where it is drawn


def test_progress_imports_only_the_standard_library() -> None:
    graph = grimp.build_graph("forklift", include_external_packages=True)
    strays = {
        (module, imported)
        for module in graph.find_descendants("forklift.progress") | {"forklift.progress"}
        for imported in graph.find_modules_directly_imported_by(module)
        if not imported.startswith(("forklift.progress", "forklift.errors", "forklift._support"))
        and imported.partition(".")[0] not in sys.stdlib_module_names | ALLOWED_THIRD_PARTY
    }
    assert not strays, f"progress/ imports outside its promise: {sorted(strays)}"
