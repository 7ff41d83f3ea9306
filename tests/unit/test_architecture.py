"""The module boundaries the README and DESIGN.md promise, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import syncd

PACKAGE = Path(syncd.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    """Every module and name a file imports (`a.b`, `a.b.name`), at the top or in a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_library_module_imports_the_cli() -> None:
    """The CLI sits on top: the demo, the daemon and the rest never import it back."""
    offenders = [
        path.relative_to(PACKAGE).as_posix()
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name not in {"cli.py", "__main__.py"}
        and any(m == "syncd.cli" or m.startswith("syncd.cli.") for m in _imported_modules(path))
    ]
    assert offenders == []


def test_the_cli_does_not_wire_a_pass_itself() -> None:
    """Lock, store, HTTP client and targets are built in syncd.passes, not in cli.py."""
    used = {m.rsplit(".", 1)[-1] for m in _imported_modules(PACKAGE / "cli.py")}
    wiring = {"httpx", "StateLock", "StateStore", "build_targets", "make_client", "run_pass"}
    assert used & wiring == set()


def test_demo_daemon_and_once_share_one_wiring_module() -> None:
    for name in ("cli.py", "demo.py", "daemon.py"):
        assert any(m.startswith("syncd.passes") for m in _imported_modules(PACKAGE / name)), name
