"""Kindle and KOReader files through the real CLI (`syncd --once`), beside the stand-in Readwise:
both formats, a no-op re-run, device edits as merge-table rows, one page for a book Readwise
also has, a config without Readwise, and a bad device file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import ROOT, Setup
from tests.mldoc import outline

DEVICES = Path(__file__).parents[1] / "fixtures" / "devices"
T1 = "2024-03-05T09:15:00+00:00"
T2 = "2024-03-07T18:40:00+00:00"
NBSP = "\u00a0"
APPENDED = (
    "Meditations (Marcus Aurelius)\r\n- Your Highlight on Location 1600-1601 | Added on Sunday, "
    "January 7, 2024 9:00:00 AM\r\n\r\nWaste no more time.\r\n==========\r\n"
)
SOURCES = """
[[sources]]
name = "kindle"
kind = "kindle_clippings"
path = "{device}/My Clippings.txt"

[[sources]]
name = "kobo"
kind = "koreader"
path = "{device}/Books"
"""


def _device(setup: Setup) -> Path:
    device = setup.config.parent / "device"
    device.mkdir()
    shutil.copy(DEVICES / "kindle" / "en-crlf-bom.txt", device / "My Clippings.txt")
    shutil.copytree(DEVICES / "koreader" / "Books", device / "Books")
    with setup.config.open("a", encoding="utf-8") as config:
        config.write(SOURCES.format(device=device.as_posix()))
    return device


def _snapshot(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots for p in root.rglob("*.md")}


def test_device_files_into_both_formats_with_the_merge_table(setup: Setup) -> None:
    meditations = setup.library.add_book(
        title="Meditations", author="Marcus Aurelius", category="books", source="kindle"
    )
    setup.library.add_highlight(
        meditations,
        text="You have power over your mind -\nnot outside events.",  # Kindle's, other spaces
        location=1406,
        location_type="location",
    )
    device = _device(setup)
    first = setup.run("--once", now=T1)
    assert first.returncode == 0, first.stderr

    books = setup.obsidian / "Readwise" / "Books"
    reich = (books / "The Rise (and Fall) of the Third Reich.md").read_text(encoding="utf-8")
    assert "- Author: [[Shirer, William L.]]" in reich
    assert (
        f"- The German Reich was proclaimed in the Hall of Mirrors. (Location{NBSP}170)\n" in reich
    )
    assert "    - Note: Check the date of this.\n" in reich
    assert "history is written by those who stay" in reich and "(Location" + NBSP + "949)" in reich
    assert reich.count("history is written") == 1  # the extended highlight replaced the first
    assert "clipping limit" not in (books / "Meditations.md").read_text(encoding="utf-8")
    dune = (books / "Dune.md").read_text(encoding="utf-8")
    assert f"- I must not fear. Fear is the mind-killer. (Page{NBSP}14)\n" in dune

    # One page for Meditations (Readwise's), the shared passage once, the device's own added.
    obsidian_pages = [p for p in setup.obsidian.rglob("*.md") if "Meditations" in p.name]
    assert len(obsidian_pages) == 1
    page = obsidian_pages[0].read_text(encoding="utf-8")
    assert page.count("You have power over your mind") == 1
    assert "First line of the passage." in page
    assert meditations in setup.pages("obs") and meditations in setup.pages("lsq")

    # Logseq, read by Logseq's own parser.
    pages = setup.logseq / "pages"
    dune_page, reich_page = outline(
        [
            pages / "Dune (highlights).md",
            pages / "The Rise (and Fall) of the Third Reich (highlights).md",
        ]
    )
    assert dune_page["page_properties"]["author"] == "[[Frank Herbert]]"
    [section] = dune_page["blocks"]
    assert [b["content"].split(" (Page")[0] for b in section["children"]] == [
        "I must not fear. Fear is the mind-killer.",
        "A beginning is the time for taking the most delicate care "
        '"that the balances are correct".',
    ]
    assert section["children"][0]["children"][0]["content"].startswith("**Note**: The litany.")
    assert len(reich_page["blocks"][0]["children"]) == 4

    # A re-run changes nothing.
    before = _snapshot(setup.obsidian, setup.logseq)
    again = setup.run("--once", now=T1)
    assert again.returncode == 0, again.stderr
    assert (
        "obs: 0 created, 0 updated" in again.stdout and "lsq: 0 created, 0 updated" in again.stdout
    )
    assert _snapshot(setup.obsidian, setup.logseq) == before

    # The user adds a line of their own to the Dune page; then the device changes.
    dune_path = books / "Dune.md"
    dune_path.write_text(
        dune_path.read_text(encoding="utf-8") + "\nMy own thoughts.\n", encoding="utf-8"
    )
    with (device / "My Clippings.txt").open("ab") as clippings:
        clippings.write(APPENDED.encode())
    sidecar = device / "Books" / "Dune.sdr" / "metadata.epub.lua"
    text = sidecar.read_text(encoding="utf-8").replace("Say it twice.", "Say it thrice.")
    start = text.index("        [3] = {")
    end = text.index('        },\n    },\n    ["doc_path"]')
    sidecar.write_text(text[:start] + text[end + len("        },\n") :], encoding="utf-8")
    third = setup.run("--once", now=T2)
    assert third.returncode == 0, third.stderr

    page = obsidian_pages[0].read_text(encoding="utf-8")
    new_section = page.split("## New highlights added")[1]
    assert "Waste no more time." in new_section  # a new highlight: appended in a new section
    dune = dune_path.read_text(encoding="utf-8")
    assert "Say it thrice." in dune and "Say it twice." not in dune  # edited in place
    assert "A beginning is the time" not in dune  # deleted on the device: removed
    assert dune.count("I must not fear.") == 1 and "My own thoughts." in dune  # yours kept
    [dune_page] = outline([pages / "Dune (highlights).md"])
    assert len(dune_page["blocks"][0]["children"]) == 1
    assert "Say it thrice." in dune_page["blocks"][0]["children"][0]["children"][0]["content"]

    status = setup.run("status", "--json")
    sources = {s["name"]: s for s in json.loads(status.stdout)["sources"]}
    assert sources["kindle"]["status"] == "ok" and sources["kobo"]["status"] == "ok"


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "READWISE_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_device_files_only_need_no_token_and_a_bad_one_exits_9(tmp_path: Path) -> None:
    device = tmp_path / "device"
    device.mkdir()
    shutil.copy(DEVICES / "kindle" / "binary-junk.bin", device / "My Clippings.txt")
    shutil.copytree(DEVICES / "koreader" / "Books", device / "Books")
    (tmp_path / "vault").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        '[state]\ndir = "state"\n\n[[targets]]\nname = "obs"\nformat = "obsidian"\n'
        'vault = "vault"\n' + SOURCES.format(device=device.as_posix()),
        encoding="utf-8",
    )
    done = _run(config, "--once")
    assert done.returncode == 9, done.stderr
    assert "not UTF-8 text" in done.stderr and "My Clippings.txt" in done.stderr
    assert (tmp_path / "vault" / "Readwise" / "Books" / "Dune.md").exists()  # the rest synced
    status = _run(config, "status")
    assert status.returncode == 0
    assert "source kindle: error" in status.stdout and "source kobo: ok, 3 books" in status.stdout
    shutil.copy(DEVICES / "kindle" / "en-crlf-bom.txt", device / "My Clippings.txt")
    fixed = _run(config, "--once")
    assert fixed.returncode == 0, fixed.stderr
    assert (tmp_path / "vault" / "Readwise" / "Books" / "Meditations.md").exists()
    files = sorted((tmp_path / "vault").rglob("*.md"))
    rebuilt = _run(config, "rebuild-state")  # device books are found again in the vault
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert sorted((tmp_path / "vault").rglob("*.md")) == files
    assert "0 created, 0 updated" in _run(config, "--once").stdout
    check = _run(config, "check")
    assert check.returncode == 0, check.stderr  # no token asked for
    assert f"source kindle (kindle_clippings): {device / 'My Clippings.txt'} found" in check.stdout


def test_a_device_book_later_found_in_readwise_keeps_its_one_page(setup: Setup) -> None:
    meditations = setup.library.add_book(
        title="Meditations", author="Marcus Aurelius", category="books", source="kindle"
    )
    setup.library.add_highlight(
        meditations,
        text="You have power over your mind - not outside events.",
        location=1406,
        location_type="location",
    )
    setup.library.add_highlight(meditations, text="Only in Readwise.", location=1700)
    _device(setup)
    with_readwise = setup.config.read_text(encoding="utf-8")
    readwise_table = with_readwise[
        with_readwise.index("[readwise]") : with_readwise.index("[state]")
    ]
    setup.config.write_text(with_readwise.replace(readwise_table, ""), encoding="utf-8")
    first = setup.run("--once", now=T1)  # the devices alone: no [readwise] yet
    assert first.returncode == 0, first.stderr
    books = setup.obsidian / "Readwise" / "Books"
    page = books / "Meditations.md"
    user_line = "\nMy thoughts on the Stoics.\n"
    page.write_text(page.read_text(encoding="utf-8") + user_line, encoding="utf-8")

    setup.config.write_text(with_readwise, encoding="utf-8")  # now with Readwise too
    second = setup.run("--once", now=T2)
    assert second.returncode == 0, second.stderr
    assert [p.name for p in setup.obsidian.rglob("Meditations*.md")] == ["Meditations.md"]
    text = page.read_text(encoding="utf-8")
    assert text.count("You have power over your mind") == 1
    assert "Only in Readwise." in text and "First line of the passage." in text
    # The user's line and the passage both have stay where they were; Readwise's own highlight
    # comes in a new section.
    assert text.count(user_line) == 1
    new_section = text.index("## New highlights added")
    assert text.index(user_line) < new_section
    assert text.index("You have power over your mind") < new_section
    assert setup.pages("obs")[meditations][0] == "Readwise/Books/Meditations.md"
    logseq = [p.name for p in (setup.logseq / "pages").glob("Meditations*.md")]
    assert logseq == ["Meditations (highlights).md"]
    third = setup.run("--once", now=T2)
    assert "obs: 0 created, 0 updated" in third.stdout
