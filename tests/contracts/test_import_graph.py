"""The package's import graph: layers that only point down (function-level imports included), no
cycles, the fakes of `lamp_pl.demo` imported by nothing else in the package, the command floor
`lamp_pl.cli` imported by nothing below it, and argparse by nothing but the command floor."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lamp_pl"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """Modules of `lamp_pl` that a file imports anywhere (top level, functions, TYPE_CHECKING)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            # `from pkg import name` imports pkg.name when that is a module, else pkg.
            names.update(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names)
    return {name for name in names if name in MODULES}


GRAPH = {name: imports(path) - {name} for name, path in MODULES.items()}


def test_no_import_cycles():
    """Depth-first search; a package's `__init__` re-exporting its own modules is not an edge back."""

    def edges(name: str) -> set[str]:
        # Importing lamp_pl.a.b runs lamp_pl.a's __init__ too, but an __init__ importing its own
        # submodules (the facade) is the package's structure, not a cycle between modules.
        return {t for t in GRAPH[name] if not name.startswith(t + ".")}

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(edges(name)):
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_retrieval_layers_point_one_way():
    """results -> registry -> controls -> retrievers -> protocol, and config under all of them."""
    order = ["results", "registry", "controls", "retrievers", "protocol"]
    for i, upper in enumerate(order):
        for lower in order[i + 1 :]:
            assert f"lamp_pl.retrieval.{upper}" not in GRAPH[f"lamp_pl.retrieval.{lower}"], f"{lower} imports {upper}"
    assert not {f"lamp_pl.retrieval.{m}" for m in order} & GRAPH["lamp_pl.retrieval.config"]


def test_only_the_demo_imports_the_demo():
    """The demo's own command (`lamp_pl.cli.demo`) is the one module above it that may."""
    for name, targets in GRAPH.items():
        if name in ("lamp_pl.demo", "lamp_pl.cli.demo") or name.startswith("lamp_pl.demo."):
            continue
        demo = sorted(t for t in targets if t == "lamp_pl.demo" or t.startswith("lamp_pl.demo."))
        assert not demo, f"{name} imports {demo}: the core must not depend on the fakes"


def in_cli(name: str) -> bool:
    return name == "lamp_pl.cli" or name.startswith("lamp_pl.cli.")


def test_nothing_below_the_command_floor_imports_it():
    for name, targets in GRAPH.items():
        if in_cli(name):
            continue
        cli = sorted(t for t in targets if in_cli(t))
        assert not cli, f"{name} imports {cli}: the library must not depend on the command floor"


def test_only_the_command_floor_parses_argv_with_argparse():
    for name, path in MODULES.items():
        if in_cli(name):
            continue
        found = {
            alias.name
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
        }
        assert "argparse" not in found, f"{name} imports argparse: commands belong in lamp_pl/cli/"


# The house, top floor first: a module may import its own floor and the floors below, never one
# above (docs/development.md's layout map says what each room is for).
LAYERS: list[tuple[str, ...]] = [
    ("lamp_pl.cli",),
    ("lamp_pl.learned", "lamp_pl.adapters"),
    ("lamp_pl.lightning",),
    ("lamp_pl.pipeline",),
    ("lamp_pl.retrieval", "lamp_pl.studygrid"),
    ("lamp_pl.models", "lamp_pl.evaluation", "lamp_pl.demo"),
    ("lamp_pl.data", "lamp_pl.prompts", "lamp_pl.studies"),
    ("lamp_pl.tasks", "lamp_pl.served"),
    ("lamp_pl.metrics", "lamp_pl.cache", "lamp_pl.resolve", "lamp_pl.shipped"),
    ("lamp_pl.errors", "lamp_pl.extras"),
]


def floor_of(name: str) -> int | None:
    """The floor (0 = top) of a module, None for the package's public face `lamp_pl` itself."""
    for at, rooms in enumerate(LAYERS):
        if any(name == room or name.startswith(room + ".") for room in rooms):
            return at
    return None


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a lower floor to a higher one, as ``importer -> imported``."""
    return [
        f"{name} -> {target}"
        for name, targets in sorted(graph.items())
        for target in sorted(targets)
        if floor_of(name) is not None and floor_of(target) is not None and floor_of(target) < floor_of(name)
    ]


def test_every_module_has_a_floor():
    homeless = sorted(name for name in MODULES if name != "lamp_pl" and floor_of(name) is None)
    assert not homeless, f"modules on no floor of LAYERS: {homeless}"


def test_layers_only_point_down():
    arrows = upward_arrows(GRAPH)
    assert not arrows, "imports that run back up a floor: " + "; ".join(arrows)


def test_an_upward_arrow_is_caught():
    """The check itself: an import from the pipeline up to the Lightning shells is reported."""
    graph = {"lamp_pl.pipeline.data": {"lamp_pl.lightning.module", "lamp_pl.tasks"}}
    assert upward_arrows(graph) == ["lamp_pl.pipeline.data -> lamp_pl.lightning.module"]
