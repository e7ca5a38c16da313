"""A linter for the one rule of scoping: only the resource store reads the resource collections,
and each of its reads passes its filter through the caller's Scope.

The behaviour is tested in tests/auth/test_facility_scope.py, which watches every query of
a tour of the API; this catches a new query path before anyone tours it.
"""

import ast
from pathlib import Path

HUB = Path(__file__).parents[2] / "hub"
STORE = HUB / "store" / "resources.py"
READS = {"find", "find_one", "aggregate", "count_documents", "distinct", "find_raw_batches"}
# Reads that serve no caller: the search-key rewrite run before serving.
UNSCOPED_METHODS = {"rewrite_search_keys"}


def _collection_name(node: ast.AST) -> str | None:
    """Return "resources" or "history" if an expression names one of those collections."""
    if isinstance(node, ast.Attribute) and node.attr in ("resources", "history"):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        if node.slice.value in ("resources", "history"):
            return str(node.slice.value)
    return None


def test_only_the_store_touches_the_resource_collections() -> None:
    offenders = []
    for path in HUB.rglob("*.py"):
        if path in (STORE, HUB / "store" / "mongo.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if _collection_name(node) is None:
                continue
            text = ast.unparse(node)  # `target.history` is a flag, `mongo.history` a collection
            if "mongo" in text or "db" in text:
                offenders.append(f"{path.relative_to(HUB.parent)}:{getattr(node, 'lineno', 0)}")
    assert not offenders, f"resource collections read outside the store: {offenders}"


def test_every_read_of_the_store_passes_through_the_scope() -> None:
    tree = ast.parse(STORE.read_text())
    unscoped = []
    for method in ast.walk(tree):
        if not isinstance(method, ast.AsyncFunctionDef | ast.FunctionDef):
            continue
        if method.name in UNSCOPED_METHODS:
            continue
        for call in ast.walk(method):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                continue
            if call.func.attr not in READS or not call.args:
                continue
            text = ast.unparse(call.func.value)
            if "resources" not in text and "history" not in text and "collection" not in text:
                continue
            query = ast.unparse(call.args[0])
            if not query.startswith(("scope.apply(", "scope.outside(")):
                unscoped.append(f"{method.name}: {ast.unparse(call)}")
    assert not unscoped, f"store reads that skip the scope: {unscoped}"
