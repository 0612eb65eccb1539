"""Import-graph guards: portal never imports bulletins; modules import each other in no circle."""

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("portal", "bulletins")
# None: services queue tasks by name (`portal.celery.queue_after_commit`), so the tasks that
# call the services and the services that queue them do not import each other.
ALLOWED_CYCLES = []


class Import(NamedTuple):
    where: str  # "portal/views.py:12"
    name: str  # absolute: a module, or "module.attribute" for `from module import attribute`


def project_files(root):
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" not in path.relative_to(root).parts:
                yield path


def module_name(path, root):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def absolute(package, level, name):
    """`from ..x import y` inside `package`, as an absolute module name."""
    if not level:
        return name
    parts = package.split(".")
    kept = parts[: max(len(parts) - level + 1, 0)]
    return ".".join([*kept, *([name] if name else [])])


def imports_in(path, root):
    """Every import in the file at any depth: module level, in functions, in classes."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    relative = path.relative_to(root).as_posix()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = absolute(package, node.level, node.module)
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        yield from (Import(f"{relative}:{node.lineno}", name) for name in names)


def scan(root):
    """The project's modules (migrations aside), each with the imports it makes."""
    return {module_name(path, root): list(imports_in(path, root)) for path in project_files(root)}


def portal_imports_of_bulletins(scanned):
    return [
        f"{found.where} imports {found.name}"
        for module, imports in scanned.items()
        if module.split(".")[0] == "portal"
        for found in imports
        if found.name.split(".")[0] == "bulletins"
    ]


def owning_module(name, modules):
    """The project module `name` is, or lives in (`bulletins.models.Bulletin` -> models)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(scanned):
    """Module -> the project modules it imports; `from package import submodule` counts as
    importing the submodule."""
    graph = {module: set() for module in scanned}
    for module, imports in scanned.items():
        targets = {owning_module(found.name, scanned) for found in imports}
        graph[module] = targets - {None, module}
    return graph


def reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def circles(graph):
    """Strongly connected components of more than one module, smallest name first."""
    reach = {module: reachable(graph, module) for module in graph}
    components = {
        frozenset(other for other in reach[module] if module in reach[other]) for module in graph
    }
    return sorted((set(c) for c in components if len(c) > 1), key=sorted)


def disallowed_circles(graph, allowed=ALLOWED_CYCLES):
    return [component for component in circles(graph) if component not in allowed]


def circle_imports(scanned, component):
    """The imports holding a component together, each as "file:line imports name"."""
    return [
        f"{found.where} imports {found.name}"
        for module in sorted(component)
        for found in scanned[module]
        if owning_module(found.name, scanned) in component - {module}
    ]


def describe(scanned, components):
    return "\n".join(
        ", ".join(sorted(c)) + "".join(f"\n    {line}" for line in circle_imports(scanned, c))
        for c in components
    )


def write_tree(root, files):
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture(scope="module")
def project():
    return scan(ROOT)


def test_portal_imports_nothing_from_bulletins(project):
    found = portal_imports_of_bulletins(project)

    assert not found, "portal must not depend on bulletins:\n" + "\n".join(found)


def test_no_module_imports_another_in_a_circle(project):
    bad = disallowed_circles(import_graph(project))

    assert not bad, "modules importing each other in a circle:\n" + describe(project, bad)


def test_the_real_scan_sees_the_whole_project(project):
    graph = import_graph(project)

    assert len(project) > 40
    assert {"portal.models", "bulletins.models", "bulletins.tasks"} <= set(project)
    assert sum(len(targets) for targets in graph.values()) > 40


def test_the_checker_finds_a_portal_import_of_bulletins_and_skips_migrations(tmp_path):
    write_tree(
        tmp_path,
        {
            "portal/__init__.py": "",
            "portal/a.py": "import os\n\n\ndef later():\n    import bulletins.b\n",
            "portal/migrations/0001_initial.py": "from bulletins.b import later\n",
            "bulletins/__init__.py": "",
            "bulletins/b.py": "from portal import a\n",
        },
    )

    found = portal_imports_of_bulletins(scan(tmp_path))

    assert found == ["portal/a.py:5 imports bulletins.b"]


def test_the_checker_finds_circles_through_relative_and_function_level_imports(tmp_path):
    write_tree(
        tmp_path,
        {
            "portal/__init__.py": "",
            "bulletins/__init__.py": "",
            "bulletins/b.py": "def later():\n    from . import c\n",
            "bulletins/c.py": "from bulletins.b import later\n",
            "bulletins/d.py": "from bulletins import c\n",
            "bulletins/notifications.py": "from bulletins import tasks\n",
            "bulletins/tasks.py": "from .notifications import send\n",
            "bulletins/sub/__init__.py": "from .. import b\n",
        },
    )
    scanned = scan(tmp_path)
    graph = import_graph(scanned)

    assert circles(graph) == [
        {"bulletins.b", "bulletins.c"},
        {"bulletins.notifications", "bulletins.tasks"},
    ]
    allowed = [{"bulletins.notifications", "bulletins.tasks"}]
    assert disallowed_circles(graph, allowed) == [{"bulletins.b", "bulletins.c"}]
    assert graph["bulletins.sub"] == {"bulletins.b"}
    assert circle_imports(scanned, {"bulletins.b", "bulletins.c"}) == [
        "bulletins/b.py:2 imports bulletins.c",
        "bulletins/c.py:1 imports bulletins.b.later",
    ]


def test_services_tell_the_cache_what_changed_and_nothing_more(project):
    graph = import_graph(project)
    services = [module for module in graph if module.startswith("bulletins.services.")]
    read_models = {"bulletins.coverage", "bulletins.caching.feed", "portal.stamps"}

    reached = {module: sorted(graph[module] & read_models) for module in services}

    assert len(services) >= 5
    assert not any(reached.values()), f"services must use bulletins.caching.changes: {reached}"
