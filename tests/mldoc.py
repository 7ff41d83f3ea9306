"""Logseq's own parser (mldoc, via tests/tools/logseq-outline) as a test helper.

`outline(paths)` returns, per page, {"page_properties": {...}, "blocks": [{content, properties,
children}]}: what Logseq itself reads. The npm package is installed on first use (CI installs it
up front). Tests that need it are marked `mldoc`; they are skipped only when Node.js is missing on
a developer machine, never in CI (CI=true makes a missing Node.js an error).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

TOOL_DIR = Path(__file__).parent / "tools" / "logseq-outline"


def _ensure_installed() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            raise RuntimeError("Node.js is required in CI for the mldoc tests")
        pytest.skip("Node.js not installed: Logseq's parser (mldoc) cannot run")
    if not (TOOL_DIR / "node_modules" / "mldoc").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to install mldoc")
        subprocess.run([npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=TOOL_DIR, check=True)
    return node


def outline(paths: list[Path]) -> list[dict[str, Any]]:
    """Parse each page with mldoc; one dict per path, in order."""
    if not paths:
        return []
    node = _ensure_installed()
    result = subprocess.run(
        [node, str(TOOL_DIR / "outline.js"), *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
    )
    lines = [
        line for line in result.stdout.split("\n") if line.strip()
    ]  # not splitlines: U+2028 is data
    if len(paths) == 1:
        return [json.loads(result.stdout)]
    return [json.loads(line) for line in lines]


def outline_text(text: str, tmp_path: Path) -> dict[str, Any]:
    """Parse a page given as text."""
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return outline([page])[0]
