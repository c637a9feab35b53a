"""Dependencies point down: ``adapter_base`` never imports ``pipelines``, ``components`` or ``examples``,
and none of its modules postpones an import of another one into a function to dodge a cycle.

Read from the source (every ``import`` statement of every module, at any depth), so an
import that only runs on some path counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import adapter_base

ROOT = Path(adapter_base.__file__).parent
UPPER_LAYERS = ("pipelines", "components", "examples")
#: Function-level imports of adapter_base's own modules that are not cycle dodges, with why.
LAZY_OWN_IMPORTS = {
    ("storage/__init__.py", "adapter_base.storage.s3"): "the S3 client is imported only when an s3:// store is opened",
}


def imports(path: Path) -> list[tuple[ast.AST, str, bool]]:
    """Every import in ``path``: (node, absolute module name, whether it sits inside a function)."""
    package = ".".join(("adapter_base", *path.relative_to(ROOT).parent.parts))  # the package the module is in
    tree = ast.parse(path.read_text(), filename=str(path))
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside.update(id(node) for node in ast.walk(fn) if node is not fn)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node, alias.name, id(node) in inside) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node, name, id(node) in inside))
    return out


def modules() -> list[Path]:
    found = sorted(ROOT.rglob("*.py"))
    assert len(found) > 40, "the walk must see the whole package"
    return found


def test_adapter_base_imports_nothing_from_pipelines_components_or_examples():
    wrong = [
        f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
        for path in modules()
        for node, name, _ in imports(path)
        if name.split(".")[0] in UPPER_LAYERS
    ]
    assert not wrong, "adapter_base depends on a layer above it:\n" + "\n".join(wrong)


def test_no_module_of_adapter_base_imports_another_inside_a_function():
    postponed = {
        (str(path.relative_to(ROOT)), name): node.lineno
        for path in modules()
        for node, name, in_function in imports(path)
        if in_function and name.split(".")[0] == "adapter_base"
    }
    unexplained = {key: line for key, line in postponed.items() if key not in LAZY_OWN_IMPORTS}
    assert not unexplained, (
        "function-level imports of adapter_base modules (a dependency pointing the wrong way: move the shared "
        f"contract down a layer instead): {unexplained}"
    )


def test_the_walk_resolves_relative_imports():
    """The checks above are only as good as the resolution of ``from ..x import y``."""
    names = {name for _, name, _ in imports(ROOT / "flows" / "train.py")}
    assert {"adapter_base.hooks", "adapter_base.flows._common", "adapter_base.registry.checkpoints"} <= names
    assert {name for _, name, _ in imports(ROOT / "__init__.py")} >= {"adapter_base.adapter", "adapter_base.registry"}
    lazy = {name for _, name, inside in imports(ROOT / "storage" / "__init__.py") if inside}
    assert lazy <= {"adapter_base.storage.s3"}
