"""The package's structure: no import cycles between its folders and top-level modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pixelseg"


def _unit(module: str) -> str:
    """``pixelseg.engine.trainer`` -> ``engine``; ``pixelseg.io`` -> ``io``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "pixelseg"


def _runtime_imports(tree: ast.AST):
    """Every ``from pixelseg... import`` in the file, lazy ones inside functions too, but not the ones under
    ``if TYPE_CHECKING:`` (annotations only, never executed)."""
    skipped = {id(node) for branch in ast.walk(tree) if isinstance(branch, ast.If)
               and getattr(branch.test, "id", None) == "TYPE_CHECKING" for node in ast.walk(branch)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pixelseg.") \
                and id(node) not in skipped:
            yield node


def import_graph() -> dict[str, dict[str, str]]:
    graph: dict[str, dict[str, str]] = {}
    for path in PACKAGE.rglob("*.py"):
        source = _unit(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        for node in _runtime_imports(ast.parse(path.read_text())):
            target = _unit(node.module)
            if target != source:
                graph.setdefault(source, {}).setdefault(target, f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return graph


def test_no_import_cycles_between_folders():
    graph = import_graph()
    state: dict[str, int] = {}

    def visit(unit: str, trail: list[str]) -> None:
        state[unit] = 1
        for target, where in graph.get(unit, {}).items():
            if state.get(target) == 1:
                cycle = trail[trail.index(target):] + [unit, target] if target in trail else [unit, target]
                raise AssertionError(f"import cycle {' -> '.join(cycle)} (e.g. {where})")
            if target not in state:
                visit(target, [*trail, unit])
        state[unit] = 2

    for unit in list(graph):
        if unit not in state:
            visit(unit, [])
    assert {"models", "engine", "data"} <= set(graph)


def test_models_and_engine_do_not_reach_up_to_loading_or_apps():
    graph = import_graph()
    for lower in ("models", "engine", "data", "losses", "metrics", "crf", "classical"):
        assert not {"loading", "apps", "cli"} & set(graph.get(lower, {})), (lower, graph.get(lower))
