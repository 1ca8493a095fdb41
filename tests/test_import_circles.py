"""No import circle between forklift's modules, function-level imports included.

A circle is a set of modules each of which imports, through the others, itself: the import
order then decides what works, and a function-level import that closes a circle only hides
it. The graph comes from grimp (which import-linter is built on), which reads every import
statement, at any depth; imports under ``if TYPE_CHECKING:`` are left out, as they never run.
Circles are the strongly connected components of that graph (Tarjan's algorithm).

Run as a script for a report of every circle with the import lines that make it::

    PYTHONPATH=src python tests/test_import_circles.py
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import grimp
import pytest

# Circles known and owned by another room's change: module sets, with who fixes them. Empty
# is the goal; a circle found that is not listed fails the test.
KNOWN: dict[frozenset[str], str] = {}


def import_graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        "forklift", include_external_packages=False, exclude_type_checking_imports=True
    )


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every set of two or more modules that import each other, directly or not; sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm, iterative over each module's edges
        work: list[tuple[str, Iterator[str]]] = [(module, iter(sorted(_imports(graph, module))))]
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        while work:
            current, edges = work[-1]
            following = next(edges, None)
            if following is not None:
                if following not in index:
                    index[following] = low[following] = len(index)
                    stack.append(following)
                    on_stack.add(following)
                    work.append((following, iter(sorted(_imports(graph, following)))))
                elif following in on_stack:
                    low[current] = min(low[current], index[following])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == current:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return sorted(found)


def _imports(graph: grimp.ImportGraph, module: str) -> set[str]:
    return set(graph.find_modules_directly_imported_by(module))


def report(graph: grimp.ImportGraph, circle: list[str]) -> str:
    """The circle's modules and, for each import between two of them, where it is written."""
    members = set(circle)
    lines = [" <-> ".join(circle)]
    for importer in circle:
        for imported in sorted(_imports(graph, importer) & members):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(
                    f"    {importer}:{detail['line_number']} imports {imported}: "
                    f"{detail['line_contents'].strip()}"
                )
    return "\n".join(lines)


GRAPH = import_graph()
FOUND = circles(GRAPH)


def test_the_finder_finds_a_circle() -> None:
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg.a")  # say, inside a function
    graph.add_import(importer="pkg", imported="pkg.a")
    assert circles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


@pytest.mark.parametrize("circle", FOUND, ids=[" ".join(circle) for circle in FOUND])
def test_no_import_circle(circle: list[str]) -> None:
    owner = KNOWN.get(frozenset(circle))
    if owner is not None:
        pytest.xfail(f"known, {owner}")
    pytest.fail(report(GRAPH, circle), pytrace=False)


def test_known_circles_still_exist() -> None:
    gone = [sorted(circle) for circle in KNOWN if sorted(circle) not in FOUND]
    assert not gone, f"fixed: remove from KNOWN: {gone}"


if __name__ == "__main__":
    for circle in FOUND:
        print(report(GRAPH, circle), end="\n\n")
    print(f"{len(FOUND)} import circle(s)")
    sys.exit(1 if FOUND else 0)
