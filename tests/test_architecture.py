"""Verification of the layer rule of docs/ARCHITECTURE.md: every import of every module of
`sim/` (at the top or inside a function: a late import is still a dependency) goes to its own
layer or to a layer the rule allows, the module graph has no cycle, and the per-agent reference
imports only what a twin may share."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SIM = ROOT / "sim"

# layer -> the layers it may import, besides itself (docs/ARCHITECTURE.md, "The layers")
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "scenario": {"core"},
    "rules": {"core"},
    "world": {"core", "scenario", "rules"},
    "measure": {"core", "scenario", "rules", "world"},
    "engine": {"core", "scenario", "rules", "world", "measure"},
    "outputs": {"core", "scenario", "world", "measure"},
    "studies": {"core", "scenario", "rules", "world", "measure", "engine", "outputs"},
    "app": {"core", "scenario", "rules", "world", "measure", "engine", "outputs", "studies"},
}
# the per-agent reference is the fast engine's deliberate twin: it shares the vocabulary,
# the streams, the scenario and the world builders, never the rules, measures or engine
REFERENCE = "sim.engine.reference"
REFERENCE_MAY_IMPORT = {
    "sim.core.codes",
    "sim.core.rng",
    "sim.scenario.schema",
    "sim.world.build",
    "sim.world.costs",
    "sim.world.population",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SIM.rglob("*.py"))}


def layer_of(module: str) -> str | None:
    """The layer of a module of sim (None for the package itself and its entry points)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def imports_of(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module of sim, line, at top level) for every import in the file; `from
    sim.x import y` counts as importing sim.x.y when that is a module, else sim.x."""
    known = modules()
    tree = ast.parse(path.read_text(), filename=str(path))
    top = {id(node) for node in tree.body}
    found: list[tuple[str, int, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module} line {node.lineno}: relative import"
            base = node.module or ""
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name == "sim" or name.startswith("sim."):
                found.append((name, node.lineno, id(node) in top))
    return found


def violations(module: str, path: Path) -> list[str]:
    own = layer_of(module)
    found: list[str] = []
    for target, line, _ in sorted(set(imports_of(module, path))):
        if own is None:
            continue  # sim/__init__.py and sim/__main__.py sit above every layer
        other = layer_of(target)
        if other is None:
            found.append(f"{module} line {line} imports {target}, outside every layer")
        elif other != own and other not in ALLOWED[own]:
            found.append(f"{module} ({own}) line {line} imports {target} ({other})")
    return list(dict.fromkeys(found))


def test_every_module_of_sim_is_in_a_layer() -> None:
    outside = [m for m in modules() if layer_of(m) is None and m not in {"sim", "sim.__main__"}]
    assert not outside, f"modules outside every layer of docs/ARCHITECTURE.md: {outside}"


def test_every_import_follows_the_layer_rule() -> None:
    found = [v for module, path in modules().items() for v in violations(module, path)]
    assert not found, "\n".join(found)


def test_no_import_cycle_between_modules() -> None:
    graph = {m: {t for t, _, _ in imports_of(m, p)} for m, p in modules().items()}
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph or nxt == "sim":
                continue
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state and module != "sim":
            visit(module, [module])


def test_the_reference_imports_only_what_a_twin_may_share() -> None:
    path = modules()[REFERENCE]
    imported = {t for t, _, _ in imports_of(REFERENCE, path)}
    assert imported <= REFERENCE_MAY_IMPORT, sorted(imported - REFERENCE_MAY_IMPORT)
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in {"random", "rng"}:
            # model.random / model.rng / self.random / self.rng are Mesa's own generators
            base = node.value
            assert not (isinstance(base, ast.Name) and base.id in {"self", "model"}), (
                f"the reference draws from {base.id}.{node.attr} (line {node.lineno})"
            )
        elif isinstance(node, ast.Name) and node.id in {"Engine", "WindowAccumulator"}:
            raise AssertionError(f"the reference names the fast engine's {node.id}")


@pytest.mark.parametrize(
    ("module", "source", "blamed"),
    [
        ("sim.rules.barriers", "from sim.world.build import build_world\n", "sim.world.build"),
        ("sim.rules.fees", "def f():\n    from sim.engine.week import Engine\n", "sim.engine"),
        ("sim.measure.metrics", "import sim.engine.week\n", "sim.engine.week"),
        ("sim.outputs.report", "from sim.studies import comparison\n", "sim.studies"),
        ("sim.core.codes", "from sim.scenario.schema import Scenario\n", "sim.scenario"),
    ],
)
def test_the_rule_catches_a_forbidden_import(
    tmp_path: Path, module: str, source: str, blamed: str
) -> None:
    """A rule module that imports a world builder or the engine (at the top or late) fails."""
    path = tmp_path / "module.py"
    path.write_text(source)
    found = violations(module, path)
    assert len(found) == 1 and blamed in found[0], found


def test_architecture_page_lists_every_layer_and_twin() -> None:
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    for layer in ALLOWED:
        assert f"`{layer}/`" in page, f"docs/ARCHITECTURE.md does not describe {layer}/"
    reference = modules()[REFERENCE].read_text()
    twins = {
        line.split("# twin:", 1)[1].strip() for line in reference.splitlines() if "# twin:" in line
    }
    assert twins, "the reference marks no twin"
    missing = sorted(t for t in twins if f"`{t}`" not in page)
    assert not missing, f"twins marked in the reference but not listed in the page: {missing}"


def test_readme_layout_and_architecture_page_name_every_module() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("Layout: `sim/`") :].split("\n\n", 1)[0]
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    for module in modules():
        parts = module.split(".")
        if len(parts) != 3:
            continue  # the package, its entry point and the layers' own __init__
        layer, name = parts[1], parts[2]
        assert f"`{layer}/`" in layout and f"`{name}`" in layout, f"README layout lacks {module}"
        assert f"`{name}`" in page, f"docs/ARCHITECTURE.md does not name {module}"


def test_every_twin_names_a_function_of_the_fast_engine() -> None:
    """A `# twin:` mark names a function, class or method that exists (a renamed or removed
    fast function leaves its twin unmarked, not pointing at nothing)."""
    import importlib

    reference = modules()[REFERENCE].read_text()
    twins = {
        line.split("# twin:", 1)[1].strip() for line in reference.splitlines() if "# twin:" in line
    }
    missing = []
    for name in sorted(twins):
        parts = name.split(".")
        # the longest prefix that is a module, then attributes down to the function
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            if module in modules():
                target: object = importlib.import_module(module)
                for attribute in parts[cut:]:
                    target = getattr(target, attribute, None)
                if callable(target):
                    break
        else:
            target = None
        if not callable(target):
            missing.append(name)
    assert not missing, f"twins marked in the reference that name no fast function: {missing}"
