"""Where things live: the benchmarks use the Slack stand-in (slackstub/), never the test suite; the modules of
assistant/ and indexer/ import each other one way (no circle, not even through an import inside a function);
no module is over 600 lines; the worker posts through the outbound module, not the listeners."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    """Every absolute import in the file, at the top or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph(*packages: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Which modules of `packages` each of their modules imports, at the top or inside a function, but not
    under `if TYPE_CHECKING:` (annotations only). `from package import name` counts as importing the module
    `package.name` when there is one, else `package` itself; relative imports are resolved."""
    files = {_module_name(path, root): path for package in packages for path in (root / package).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        annotations_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for statement in node.body
            for inner in ast.walk(statement)
        }
        imported = set()
        for node in ast.walk(tree):
            if id(node) in annotations_only:
                continue
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}".rstrip(".")
                for alias in node.names:
                    imported.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base)
        graph[name] = {module for module in imported if module in files and module != name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), each as one circle
    through its modules, e.g. ["a", "b", "a"]."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for nxt in sorted(graph[module]):
            if nxt not in index:
                visit(nxt)
                low[module] = min(low[module], low[nxt])
            elif nxt in stack:
                low[module] = min(low[module], index[nxt])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                components.append(set(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_one_circle(graph, component) for component in components]


def _one_circle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, within the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for module in frontier:
            for nxt in sorted(graph[module] & component):
                if nxt == start:
                    return [*paths[module], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[module], nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return sorted(component)


def test_the_modules_of_assistant_and_indexer_import_each_other_without_a_circle():
    circles = [" -> ".join(circle) for circle in _circles(_import_graph("assistant", "indexer"))]
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_circle_finder_names_a_circle_through_an_import_inside_a_function(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg.base import Item\n")
    (package / "base.py").write_text("import os\n")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def later():\n    from . import c\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.d import D\ndef f():\n    import pkg.a\n"
    )
    (package / "d.py").write_text("from pkg.c import f\n")
    graph = _import_graph("pkg", root=tmp_path)
    assert graph == {
        "pkg": {"pkg.base"},
        "pkg.base": set(),
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.c"},
        "pkg.c": {"pkg.a"},  # not pkg.d: an annotation's import
        "pkg.d": {"pkg.c"},
    }
    assert _circles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    (package / "c.py").write_text("import os\n")
    assert _circles(_import_graph("pkg", root=tmp_path)) == []


MAX_MODULE_LINES = 600


def test_no_module_is_over_600_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for package in ("assistant", "indexer", "lab", "slackstub", "sourcestub")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_the_benchmarks_import_nothing_from_the_tests():
    offenders = {
        path.name: sorted(m for m in _imported_modules(path) if m == "tests" or m.startswith("tests."))
        for path in sorted((ROOT / "bench").glob("*.py"))
    }
    assert {name: modules for name, modules in offenders.items() if modules} == {}


def test_the_slack_stand_in_is_importable_without_pytest():
    imported = set().union(*(_imported_modules(path) for path in (ROOT / "slackstub").glob("*.py")))
    assert {m for m in imported if m.split(".")[0] in ("pytest", "tests")} == set()


SLACK = ROOT / "assistant" / "slack"
BOLT_LISTENER_ARGUMENTS = {"ack", "body", "say", "respond", "next"}
BOLT_REGISTRATIONS = {"event", "action", "command", "view", "shortcut", "message", "options", "use", "middleware"}


def _listener_modules() -> set[str]:
    """Slack modules that hand Bolt a listener or a middleware: they register one (`app.event(...)`, ...) or
    define a function taking Bolt's listener arguments (a `BoltContext` with `body`, `ack`, `say`, ...)."""
    found = set()
    for path in SLACK.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
                takes_context = any(
                    a.annotation is not None and "BoltContext" in ast.unparse(a.annotation) for a in args
                )
                if takes_context and {a.arg for a in args} & BOLT_LISTENER_ARGUMENTS:
                    found.add(f"assistant.slack.{path.stem}")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in BOLT_REGISTRATIONS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "app"
            ):
                found.add(f"assistant.slack.{path.stem}")
    return found


def test_slack_modules_import_each_other_without_a_circle():
    graph = {
        f"assistant.slack.{path.stem}": {m for m in _imported_modules(path) if m.startswith("assistant.slack.")}
        for path in SLACK.glob("*.py")
    }

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    assert sorted(module for module in graph if reaches(module, module, {module})) == []


def test_every_listener_module_is_found_by_what_it_hands_bolt():
    listeners = _listener_modules()
    # Help channels listen through a handler that app.py registers (and a middleware); found all the same.
    assert {"assistant.slack.app", "assistant.slack.admin", "assistant.slack.mentoring"} <= listeners
    assert "assistant.slack.channels" in listeners
    assert "assistant.slack.outbound" not in listeners


def test_the_worker_reaches_slack_through_the_outbound_module_alone():
    slack = {
        m
        for m in _imported_modules(ROOT / "assistant" / "worker.py")
        if m == "assistant.slack" or m.startswith("assistant.slack.")
    }
    assert slack == {"assistant.slack.outbound"}


def test_no_listener_is_imported_but_by_a_listener_or_the_server_that_mounts_them():
    listeners = _listener_modules()
    may_import = listeners | {"assistant.slack.server"}
    importers = {}
    for path in (ROOT / "assistant").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found = _imported_modules(path) & (listeners - {name})
        if found and name not in may_import:
            importers[name] = sorted(found)
    assert importers == {}


def test_the_slack_notifier_and_the_mentor_blocks_read_no_database():
    """They are fed views (requests, offers, mentors, drafts, re-index runs); what a mentor may see is decided
    in the core."""
    for module in ("notifier.py", "mentor_blocks.py", "admin_blocks.py", "outbound.py"):
        imported = _imported_modules(SLACK / module)
        assert {m for m in imported if m.startswith(("assistant.db.models", "sqlalchemy"))} == set(), module


def test_the_edges_call_the_service_and_never_reach_into_its_database_or_retriever():
    """Slack listeners, the CLI, the web pages and the worker call the use cases the composition root exposes
    (`service.asking.ask`, `service.records.vote`, ...), never its database or retriever, or a use case's."""
    import re

    reach = re.compile(r"service\.(?:\w+\.)?(database|retriever|_\w+)\b")
    edges = [
        *SLACK.glob("*.py"),
        *(ROOT / "assistant" / "cli").glob("*.py"),
        *(ROOT / "assistant" / "web").glob("*.py"),
        ROOT / "assistant" / "worker.py",
    ]
    found = [f"{path.name}: {m.group(0)}" for path in edges for m in reach.finditer(path.read_text())]
    assert found == []
