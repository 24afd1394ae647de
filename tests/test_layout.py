"""The package keeps its architecture: who may talk to Accelerate, no import cycles, a docstring
that says what each module owns, and a training loop that reads as a table of contents."""

import ast
import inspect
import os

from tests.conftest import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, "accel_trainer")
# The only modules that may import accelerate: the runtime and the training components.
ACCELERATE_ALLOWED = ("accel_trainer.runtime", "accel_trainer.train")


def modules() -> dict[str, ast.Module]:
    """Every module of the package by dotted name, parsed."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            dotted = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
            dotted = dotted.removesuffix(".__init__")
            with open(path, encoding="utf-8") as handle:
                found[dotted] = ast.parse(handle.read(), path)
    return found


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(tree: ast.Module) -> set[str]:
    """Every module a module imports, at the top or inside functions, but not the imports
    that only type checkers see."""
    names = set()

    def visit(node: ast.AST) -> None:
        if is_type_checking_block(node):
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def test_only_the_runtime_and_the_train_components_import_accelerate():
    offenders = {
        name: sorted(n for n in imported_modules(tree) if n.split(".")[0] == "accelerate")
        for name, tree in modules().items()
        if not name.startswith(ACCELERATE_ALLOWED)
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_package_has_no_import_cycles():
    parsed = modules()
    graph = {
        name: {n for n in imported_modules(tree) if n in parsed and n != name}
        for name, tree in parsed.items()
    }
    # A package's __init__ importing its own submodules is how packages export; not a cycle.
    for name in graph:
        graph[name] = {n for n in graph[name] if not n.startswith(name + ".")}
    cycles = []

    def walk(node: str, path: list[str], done: set[str]) -> None:
        for target in sorted(graph[node]):
            if target in path:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in done:
                walk(target, [*path, target], done)
        done.add(node)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            walk(name, [name], done)
    assert cycles == []


def test_every_module_opens_with_a_docstring_of_what_it_owns():
    missing = [name for name, tree in modules().items() if not ast.get_docstring(tree)]
    assert missing == []


def test_fit_reads_as_a_table_of_contents():
    from accel_trainer import AccelerateTrainer

    lines = inspect.getsource(AccelerateTrainer.fit).splitlines()
    assert len(lines) <= 40, f"fit() is {len(lines)} lines"
