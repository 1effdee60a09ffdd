"""The import graph of storecast's own modules: no circles, and no layer imports one above it.

Layers, bottom first (a module may import its own layer and those below):

0. ``storecast.settings``: where the state lives and which server to talk to;
1. ``storecast.database`` (server, schema, loader, sample data), ``storecast.config``
   (the dbt vars) and ``storecast.db`` (connections);
2. ``storecast.training`` and ``storecast.build`` (the feature build);
3. ``storecast.scoring`` (families, inference, partitions, score, backtests, drift) and its ``runs``;
4. ``storecast.scoring.pipeline`` (the daily run) and ``storecast.report`` with its
   ``storecast.charts`` (the HTML report on what scoring and monitoring wrote);
5. ``storecast.cli`` and its rendering, ``storecast.render``, and the HTTP service,
   ``storecast.service``: two front ends over the same library.

Imports inside functions count too: a lazy import still ties the layers together.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests import REPOSITORY

LAYERS: list[tuple[str, ...]] = [
    ("storecast.settings",),
    ("storecast.database", "storecast.config", "storecast.db"),
    ("storecast.training", "storecast.build"),
    tuple(
        f"storecast.scoring.{m}"
        for m in ("families", "inference", "partitions", "score", "runs", "backtests", "drift")
    ),
    ("storecast.scoring.pipeline", "storecast.report", "storecast.charts"),
    ("storecast.cli", "storecast.render", "storecast.service"),
]
#: Folder of the repository -> the package it is installed as.
PACKAGES = {
    "storecast": "storecast",
    "database": "storecast.database",
    "training": "storecast.training",
    "scoring": "storecast.scoring",
}


def _modules() -> dict[str, Path]:
    """Every module of the four folders, by the name it is imported as."""
    modules = {}
    for folder, package in PACKAGES.items():
        for path in (REPOSITORY / folder).rglob("*.py"):  # does not descend into storecast/'s links
            parts = list(path.relative_to(REPOSITORY / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _layer(module: str) -> int:
    for level, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"{module} belongs to no layer; add it to LAYERS")


def import_graph() -> dict[str, set[str]]:
    """For each module of the four packages, the modules of theirs it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, if there is any."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_there_is_no_import_circle() -> None:
    assert _cycle(import_graph()) is None


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_the_check_sees_a_circle_and_an_upward_import() -> None:
    # The checks themselves can fail: a made-up graph with both faults.
    server = "storecast.database.server"
    graph = {"storecast.settings": {server}, server: {"storecast.settings"}}
    assert _cycle(graph) == [server, "storecast.settings", server]
    assert _layer("storecast.cli") > _layer("storecast.training.train")


#: What only some commands need: the command line imports them inside those commands.
HEAVY = ("sklearn", "scipy", "onnx", "onnxruntime", "skl2onnx", "pandas", "dbt", "fastapi", "uvicorn")


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    # A fresh interpreter: this session has imported them already. `storecast --help`,
    # `runs`, `db status` or `models list` (the registry) should answer in about a second,
    # not after loading them all.
    code = (
        "import sys, storecast.cli, storecast.training.registry; "
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []
