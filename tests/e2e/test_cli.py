"""The other commands as a user runs them: check, status, demo, usage errors, the lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from syncd.lock import StateLock
from tests.e2e.conftest import ROOT, TOKEN, Setup


def _syncd(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "READWISE_"))}
    base["PYTHONPATH"] = str(ROOT)
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        capture_output=True,
        text=True,
        env=base,
        cwd=cwd,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_check_reports_each_part(setup: Setup) -> None:
    result = setup.run("check")
    assert result.returncode == 0, result.stderr
    assert "token: accepted" in result.stdout
    assert "target obs: vault" in result.stdout and "target lsq: vault" in result.stdout
    assert TOKEN not in result.stdout + result.stderr


def test_status_after_a_pass(setup: Setup) -> None:
    assert setup.run("--once").returncode == 0
    result = setup.run("status", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    by_name = {t["target"]: t for t in report["targets"]}
    assert by_name["obs"]["pages"] > 0
    assert by_name["obs"]["last_run"]["result"] == "ok"
    assert by_name["obs"]["pages"] == by_name["lsq"]["pages"]
    human = setup.run("status")
    assert "obs (" in human.stdout and "last pass" in human.stdout


def test_missing_config_exits_2_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = _syncd("--config", str(missing), "--once")
    assert result.returncode == 2
    assert str(missing) in result.stderr


def test_config_from_environment_variable(setup: Setup) -> None:
    result = _syncd("check", env={"SYNCD_CONFIG": str(setup.config), "READWISE_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr


def test_usage_error_exits_2() -> None:
    assert _syncd("--no-such-flag").returncode == 2


def test_second_instance_exits_6_naming_the_pid(setup: Setup) -> None:
    with StateLock(setup.state):
        result = setup.run("--once")
    assert result.returncode == 6
    assert f"PID {os.getpid()}" in result.stderr


def test_demo_twice_merges_and_duplicates_nothing(tmp_path: Path) -> None:
    first = _syncd("demo", "--vault", str(tmp_path / "demo"))
    assert first.returncode == 0, first.stderr
    assert "9 created" in first.stdout  # 8 Readwise books, 1 from the Kindle file only
    notes = sorted((tmp_path / "demo" / "obsidian-vault").rglob("*.md"))
    pages = sorted((tmp_path / "demo" / "logseq-graph" / "pages").glob("*.md"))
    sync_log = tmp_path / "demo" / "logseq-graph" / "pages" / "Readwise.md"
    assert sync_log in pages, "Readwise's sync notification page"
    pages.remove(sync_log)
    assert len(notes) == 9 and len(pages) == 9
    books = tmp_path / "demo" / "obsidian-vault" / "Readwise" / "Books"
    assert "Care about your craft." in (books / "The Pragmatic Programmer.md").read_text("utf-8")
    meditations = (books / "Meditations.md").read_text(encoding="utf-8")
    assert "dyed with the color of its thoughts" in meditations  # the Kindle's, on one page
    assert meditations.count("Waste no more time arguing") == 1  # in both: shown once
    before = {p: p.read_bytes() for p in notes + pages}
    edited = notes[0]
    edited.write_text(edited.read_text(encoding="utf-8") + "\nmy own line\n", encoding="utf-8")
    second = _syncd("demo", "--vault", str(tmp_path / "demo"))
    assert second.returncode == 0, second.stderr
    # The stand-in "Readwise" changed the book of the edited note and one other book (the
    # Kindle-only book is among the unchanged).
    assert "0 created, 2 updated, 7 unchanged, 1 highlight added" in second.stdout
    assert "Demo run 2:" in second.stdout
    assert "\nmy own line\n" in edited.read_text(encoding="utf-8")
    assert sorted((tmp_path / "demo" / "obsidian-vault").rglob("*.md")) == notes
    # (Readwise.md, where the graph has one, is Logseq's sync log page, not a book's.)
    after = (tmp_path / "demo" / "logseq-graph" / "pages").glob("*.md")
    assert sorted(p for p in after if p.name != "Readwise.md") == pages
    changed = [path for path, data in before.items() if path.read_bytes() != data]
    assert len(changed) == 4 and edited in changed  # two books, in both targets
