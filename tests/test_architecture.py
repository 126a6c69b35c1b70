"""The layout rules, read with `ast`: imports run one way without cycles, modules and functions stay small."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cityseg", "components", "pipelines", "tests")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
# The import path of each top-level folder of the package (`cityseg/components` links to `components/`).
PACKAGE_ROOTS = {"cityseg": "cityseg", "components": "cityseg.components", "pipelines": "cityseg.pipelines"}
# Module -> why it may be longer than MAX_MODULE_LINES.
LONG_MODULES = {
    "components/synth/scene.py": "the street-scene grammar: one table of object kinds and their placement "
    "rules, which reads best whole",
}


def _modules(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def pipeline_imports(path: Path) -> list[str]:
    """`file:line module` for every import of `cityseg.pipelines` in the module at `path`."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{_name(path)}:{line} {module}"
        for line, module in _imported_modules(tree)
        if module == "cityseg.pipelines" or module.startswith("cityseg.pipelines.")
    ]


def module_name(path: Path, root: Path = ROOT) -> str:
    """The import path of the module at `path`: `components/x/core.py` -> `cityseg.components.x.core`."""
    parts = path.relative_to(root).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join((PACKAGE_ROOTS[parts[0]], *parts[1:]))


def import_graph(paths: list[Path], root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of `paths` it imports, at module level or inside a function."""
    names = {module_name(path, root): path for path in paths}
    graph = {}
    for name, path in names.items():
        targets = set()
        for _, imported in _imported_modules(ast.parse(path.read_text(), str(path))):
            # `from a.b import c` names module a.b.c or attribute c of a.b: take the longest module.
            target = imported
            while target and target not in names:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every set of modules that import each other, directly or around a loop (Tarjan's components)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body[1:] if len(node.body) > 1 and ast.get_docstring(node) is not None else node.body
    return node.end_lineno - body[0].lineno + 1


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """`file:line name (N lines)` for every function whose body, docstring aside, exceeds `limit` lines."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{_name(path)}:{node.lineno} {node.name} ({lines} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (lines := _body_lines(node)) > limit
    ]


def test_no_step_or_shared_module_imports_the_pipelines():
    # cityseg/cli.py names pipeline modules as strings in its COMMANDS table: the CLI entry may.
    found = [problem for path in _modules("cityseg", "components") for problem in pipeline_imports(path)]
    assert not found, "imports run one way, pipelines -> steps:\n" + "\n".join(found)


def test_the_import_check_sees_every_form_of_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text(
        "import cityseg.pipelines.local\n"
        "from cityseg.pipelines import steps\n"
        "def f():\n"
        "    from cityseg.pipelines.validation import validate_params\n"
        "    importlib.import_module('cityseg.pipelines.cli')\n"
        "COMMANDS = {'run': 'cityseg.pipelines.cli:run'}\n"
    )
    assert [line.split(" ", 1)[1] for line in pipeline_imports(module)] == [
        "cityseg.pipelines.local",
        "cityseg.pipelines.steps",
        "cityseg.pipelines.validation.validate_params",
        "cityseg.pipelines.cli",
    ]


def test_no_module_of_the_package_is_in_an_import_cycle():
    cycles = import_cycles(import_graph(_modules("cityseg", "components", "pipelines")))
    assert not cycles, "modules that import each other (move the shared part below both):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )


def test_the_cycle_check_sees_a_cycle_hidden_in_a_function(tmp_path):
    step = tmp_path / "components" / "step"
    step.mkdir(parents=True)
    (step / "core.py").write_text("from cityseg.components.step import extra\n")
    (step / "extra.py").write_text("def f():\n    from cityseg.components.step.core import g\n")
    (step / "alone.py").write_text("import cityseg.components.step.core\n")
    graph = import_graph(sorted(tmp_path.rglob("*.py")), tmp_path)
    assert graph["cityseg.components.step.alone"] == {"cityseg.components.step.core"}
    assert import_cycles(graph) == [["cityseg.components.step.core", "cityseg.components.step.extra"]]


def test_no_module_exceeds_the_line_limit():
    long = [
        f"{_name(path)} ({lines} lines)"
        for path in _modules(*PACKAGES)
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
        and _name(path) not in LONG_MODULES
    ]
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)


@pytest.mark.parametrize("exception", sorted(LONG_MODULES))
def test_every_long_module_exception_exists_and_says_why(exception):
    assert (ROOT / exception).is_file()
    assert len(LONG_MODULES[exception].split()) >= 5


def test_no_function_body_exceeds_the_line_limit():
    found = [problem for path in _modules(*PACKAGES) for problem in long_functions(path)]
    assert not found, f"function bodies over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(found)


def test_the_function_check_counts_the_body_without_the_docstring(tmp_path):
    module = tmp_path / "m.py"
    body = "".join(f"    x{i} = {i}\n" for i in range(5))
    module.write_text(
        f'def short():\n    """Doc\n\n    more doc.\n    """\n{body}\n\ndef long():\n    y = 0\n{body}'
    )
    assert long_functions(module, limit=5) == ["m.py:13 long (6 lines)"]
