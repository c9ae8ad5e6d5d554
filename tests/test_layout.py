"""The layout holds: imports run one way down the floors, the README's table of rooms names every module, and no
module outgrows its room. Read from the source with `ast`; nothing is imported."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "notifier"
MAX_LINES = 520
# Data rather than code: what the demo councils publish.
LONG_DATA = {"notifier/demo/data.py"}

# The floors of README.md's "Architecture in brief", lowest first: `cli` → `service` → `web/`, `worker.py` →
# `matching/` → `delivery/` → `ingest/` → `sources/`, `documents/`, `subscriptions`, `councils` → `topics/`,
# `models`, `db`, `settings`. A module may import from its own floor and the ones below, never from one above.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    # the ground: the filter language, shared models and settings, and helpers that import nothing above them
    ("ground", (
        "notifier/__init__.py", "notifier/topics/", "notifier/models.py", "notifier/db.py", "notifier/settings.py",
        "notifier/zones.py", "notifier/logs.py", "notifier/metrics.py", "notifier/tokens.py", "notifier/leases.py",
        "notifier/embedded.py", "notifier/data/",
    )),
    # pure floors (no database, no network) and the records people and partners own
    ("records", (
        "notifier/sources/", "notifier/documents/", "notifier/ingest/diff.py", "notifier/ingest/normalise.py",
        "notifier/ingest/summaries.py", "notifier/feeds.py", "notifier/feed_calendar.py",
        "notifier/subscriptions.py", "notifier/councils.py", "notifier/partners.py",
    )),
    ("ingest", ("notifier/ingest/",)),
    ("delivery", ("notifier/delivery/",)),
    ("matching", ("notifier/matching/",)),
    # the processes' contents: the web app, the worker's jobs and the demo councils' own server
    ("processes", ("notifier/web/", "notifier/worker.py", "notifier/demo/")),
    ("service", ("notifier/service.py",)),
    ("command", ("notifier/cli.py",)),
]


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _floor(rel: str) -> int | None:
    """The floor of a module (its longest matching prefix), or None when no floor names it."""
    best: tuple[int, int] | None = None
    for rank, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if (rel == prefix or (prefix.endswith("/") and rel.startswith(prefix))) and (
                best is None or len(prefix) > best[1]
            ):
                best = (rank, len(prefix))
    return None if best is None else best[0]


def _module_file(dotted: str) -> str | None:
    """The file of a dotted module name under notifier/, or None when it names no module of ours."""
    base = ROOT.joinpath(*dotted.split("."))
    if base.with_suffix(".py").is_file():
        return _relative(base.with_suffix(".py"))
    if (base / "__init__.py").is_file():
        return _relative(base / "__init__.py")
    return None


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, file imported) for every import of our own modules in `path`, including those inside functions and
    under TYPE_CHECKING. `from a import b` counts as importing `a.b` when b is a module, else `a`."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if target := _module_file(alias.name):
                    found.append((node.lineno, target))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                module = ".".join(parts + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("notifier"):
                continue
            for alias in node.names:
                target = _module_file(f"{module}.{alias.name}") or _module_file(module)
                if target:
                    found.append((node.lineno, target))
    return found


def test_layout_every_module_has_a_floor() -> None:
    unplaced = [_relative(p) for p in _modules() if _floor(_relative(p)) is None]
    assert not unplaced, f"modules on no floor (add them to FLOORS in {_relative(Path(__file__))}): {unplaced}"


def test_layout_imports_run_down_the_floors() -> None:
    upward = []
    for path in _modules():
        rel = _relative(path)
        floor = _floor(rel)
        if floor is None:
            continue
        for line, target in _imports(path):
            target_floor = _floor(target)
            if target_floor is not None and target_floor > floor:
                upward.append(
                    f"{rel}:{line} ({FLOORS[floor][0]}) imports {target} ({FLOORS[target_floor][0]})"
                )
    assert not upward, "imports going up a floor:\n" + "\n".join(upward)


def test_layout_modules_fit_their_room() -> None:
    lines = {_relative(p): len(p.read_text(encoding="utf-8").splitlines()) for p in _modules()}
    long = {rel: n for rel, n in lines.items() if n > MAX_LINES and rel not in LONG_DATA}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _rooms_table() -> list[tuple[list[str], str]]:
    """The README's table of rooms: for each row, the names in its first cell and the text of its second."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Architecture in brief"):]
    section = section[: section.index("\n#", 1)]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        room, what = line.strip().strip("|").split("|", 1)
        rows.append((re.findall(r"`([^`]+)`", room), what))
    return rows


def test_layout_readme_names_every_room_and_module() -> None:
    rows = _rooms_table()
    listed = {name for names, _ in rows for name in names}
    by_package = {name: what for names, what in rows for name in names if name.endswith("/")}
    missing = []
    for path in _modules():
        rel = _relative(path)
        if path.name == "__init__.py":
            package = rel.removesuffix("__init__.py")
            if package != "notifier/" and package not in listed:
                missing.append(package)
            continue
        package = rel.rsplit("/", 1)[0] + "/"
        if rel not in listed and f"`{path.name}`" not in by_package.get(package, ""):
            missing.append(rel)
    assert not missing, f"not named in the README's table of rooms (Architecture in brief): {missing}"


def test_layout_readme_names_only_modules_that_exist() -> None:
    gone = []
    for names, what in _rooms_table():
        packages = [n for n in names if n.startswith("notifier/") and n.endswith("/")] or ["notifier/"]
        gone += [n for n in names if n.endswith(".py") and not (ROOT / n).is_file()]
        for module in re.findall(r"`([\w/]+\.py)`", what):
            if not any((ROOT / p / module).is_file() for p in packages):
                gone.append(f"{module} (in the row of {', '.join(packages)})")
    assert not gone, f"the README's table of rooms names modules that do not exist: {gone}"
