"""Where things live: the benchmarks use the Slack stand-in (slackstub/), never the test suite; Slack's
modules import each other one way; the worker posts through the outbound module, not the listeners."""

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
    """Slack listeners, the CLI and the worker go through MomentService's use-case methods."""
    import re

    reach = re.compile(r"service\.(database|retriever|_\w+)\b")
    edges = [*SLACK.glob("*.py"), *(ROOT / "assistant" / "cli").glob("*.py"), ROOT / "assistant" / "worker.py"]
    found = [f"{path.name}: {m.group(0)}" for path in edges for m in reach.finditer(path.read_text())]
    assert found == []
