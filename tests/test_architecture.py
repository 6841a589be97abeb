"""Which way imports run (docs/architecture.md): no cycles anywhere, no upward arrows inside ``model/``, no
serving or cluster libraries in ``model/``, and ``pipelines/`` and ``services/`` side by side.

Imports are read with :mod:`ast`, so a module is never executed here. Top-level and function-level imports count
alike (an import inside a function is still an arrow: it only moves the cost to the first call), and so do
``importlib.import_module("...")`` / ``__import__("...")`` with a literal name; imports under
``if TYPE_CHECKING:`` do not (they exist for the type checker only).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "pipelines", "services", "colorize")

# model/'s layers, lowest first. A module may import its own layer and those below, never one above.
MODEL_LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "model.errors",
        "model.config",
        "model.color",
        "model.compose_kernel",
        "model.device",
        "model.neutral",
        "model.quantize",
        "model.chroma_level",
    ),
    ("model.registry", "model.efficientnet"),  # the registry mechanism; the pretrained backbone network
    ("model.network", "model.baselines", "model.prior"),  # the families; each registers itself
    ("model.families",),  # the catalog: imports every family
    ("model.checkpoint",),
    (
        "model.imageio",
        "model.gpu_codecs",
        "model.compose",
        "model.encoded",
        "model.onnx_backend",
        "model.export",
        "model.photos",
        "model.metrics",
    ),
    ("model.predictor", "model.spec"),  # the predictor, and the one description of which model it runs
    ("model.evaluation", "model.calibration", "model.checkset"),
    ("model.training",),  # and every model.training.* module: training recipes stand on the library
    ("model",),  # the package's facade (lazy re-exports)
)
# Known upward arrows, each with the reason it still stands. Keep this empty where you can.
ALLOWED_UPWARD: set[tuple[str, str]] = set()  # none: every arrow inside model/ points down
FORBIDDEN_IN_MODEL = (
    "ray",
    "fastapi",
    "starlette",
    "uvicorn",
    "boto3",
    "botocore",
    "pipelines",
    "services",
    "colorize",
    "benchmarks",
    "tests",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = known
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            anchor = self.package.split(".")[: len(self.package.split(".")) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:  # `from model import baselines` imports the module model.baselines
            sub = f"{base}.{alias.name}"
            self.found.add(sub if sub in self.known else base)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        first = node.args[0] if node.args else None
        if name in ("__import__", "import_module") and isinstance(first, ast.Constant) and isinstance(first.value, str):
            self.found.add(first.value)
        self.generic_visit(node)


def _graph() -> dict[str, set[str]]:
    """Each project module -> the names it imports (project modules and third-party top-level names)."""
    modules = _project_modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        visitor = _Imports(name, path.name == "__init__.py", known)
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        graph[name] = visitor.found - {name}
    return graph


def _project_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    known = set(graph)
    edges: dict[str, set[str]] = {}
    for name, imported in graph.items():
        targets = set()
        for target in imported:
            while target and target not in known:  # `import model.training.data` -> that module
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def _layer(module: str) -> int:
    for depth, layer in enumerate(MODEL_LAYERS):
        for entry in layer:
            if module == entry or (entry != "model" and module.startswith(entry + ".")):
                return depth
    raise AssertionError(f"{module} has no layer in MODEL_LAYERS: add it where it belongs")


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


GRAPH = _graph()
EDGES = _project_edges(GRAPH)


def test_the_parser_sees_function_level_imports_and_skips_type_checking() -> None:
    source = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from model.predictor import Colorizer\n"
        "def f():\n    from model.color import rgb_to_lab\n    import importlib\n"
        "    importlib.import_module('model.prior')\nfrom . import network\n"
    )
    visitor = _Imports("model.encoded", False, {"model.network", "model.color", "model.prior"})
    visitor.visit(ast.parse(source))
    assert visitor.found == {"typing", "model.color", "importlib", "model.prior", "model.network"}


def test_no_import_cycles() -> None:
    assert _cycles(EDGES) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_model_module_has_a_layer() -> None:
    for module in EDGES:
        if module.split(".")[0] == "model":
            _layer(module)


@pytest.mark.parametrize("module", sorted(m for m in EDGES if m.split(".")[0] == "model"))
def test_model_imports_point_down(module: str) -> None:
    upward = [
        target
        for target in sorted(EDGES[module])
        if target.split(".")[0] == "model"
        and _layer(target) > _layer(module)
        and (module, target) not in ALLOWED_UPWARD
    ]
    assert upward == [], f"{module} (layer {_layer(module)}) imports a higher layer: {upward}"


def test_allowed_upward_arrows_still_exist() -> None:
    """An exception that is no longer needed is removed from the list, so the list stays honest."""
    for module, target in ALLOWED_UPWARD:
        assert target in EDGES[module], f"{module} no longer imports {target}: drop it from ALLOWED_UPWARD"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.split(".")[0] == "model"))
def test_model_imports_no_serving_cluster_or_upper_packages(module: str) -> None:
    bad = sorted(name for name in GRAPH[module] if name.split(".")[0] in FORBIDDEN_IN_MODEL)
    assert bad == [], f"{module} imports {bad}: model/ is the ground floor"


@pytest.mark.parametrize(("package", "other"), [("pipelines", "services"), ("services", "pipelines")])
def test_pipelines_and_services_never_import_each_other(package: str, other: str) -> None:
    bad = {m: sorted(t for t in GRAPH[m] if t.split(".")[0] == other) for m in GRAPH if m.split(".")[0] == package}
    assert {m: t for m, t in bad.items() if t} == {}


def test_no_library_module_imports_the_cli_benchmarks_or_tests() -> None:
    def forbidden(module: str) -> tuple[str, ...]:
        return ("benchmarks", "tests") if module.startswith("colorize") else ("benchmarks", "tests", "colorize")

    bad = {m: sorted(t for t in GRAPH[m] if t.split(".")[0] in forbidden(m)) for m in GRAPH}
    assert {m: t for m, t in bad.items() if t} == {}
