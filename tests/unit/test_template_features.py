"""What comes with custom templates besides the templates: the sync log page, the document-tag
filters, Reader heading highlights, Obsidian's category folders and front matter."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from syncd.config import load_config
from syncd.errors import ConfigError
from syncd.notes.template_set import TemplateSet, default_set, load_template_set
from tests.harness import Harness

Fmt = Literal["obsidian", "logseq"]
FORMATS: list[Fmt] = ["obsidian", "logseq"]


def _templates(tmp_path: Path, fmt: Fmt, files: dict[str, str]) -> TemplateSet:
    folder = tmp_path / "tpl"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return load_template_set(fmt, folder)


# --- the sync log ------------------------------------------------------------------------------


def test_logseq_appends_to_the_readwise_page_only_on_passes_that_added_highlights(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, "logseq", templates=default_set("logseq"))
    h.source.add_book(1, "One", ["first highlight", "second highlight"])
    h.source.add_book(2, "Two", ["third highlight"])
    h.sync()
    log_page = h.vault / "pages" / "Readwise.md"
    first = log_page.read_text(encoding="utf-8")
    assert first.startswith("- On [[") and first.endswith(
        "Readwise synced 3 highlights from 2 books."
    )
    h.sync()  # nothing new: no entry
    assert log_page.read_text(encoding="utf-8") == first
    h.source.add_highlight(2, "a fourth highlight")
    h.sync()
    lines = log_page.read_text(encoding="utf-8").split("\n")
    assert lines[0] == first and lines[1].endswith("synced 1 highlight from 1 book.")


def test_the_log_page_keeps_what_the_user_wrote_in_it(tmp_path: Path) -> None:
    h = Harness(tmp_path, "logseq", templates=default_set("logseq"))
    h.source.add_book(1, "One", ["first highlight"])
    h.sync()
    log_page = h.vault / "pages" / "Readwise.md"
    log_page.write_text(log_page.read_text(encoding="utf-8") + "\n- my own note\n")
    h.source.add_highlight(1, "second highlight")
    h.sync()
    text = log_page.read_text(encoding="utf-8")
    assert "\n- my own note\n- On [[" in text and not text.endswith("\n")


def test_an_empty_logseq_notification_template_turns_the_log_off(tmp_path: Path) -> None:
    h = Harness(
        tmp_path, "logseq", templates=_templates(tmp_path, "logseq", {"sync_notification.j2": ""})
    )
    h.source.add_book(1, "One", ["first highlight"])
    h.sync()
    assert not (h.vault / "pages" / "Readwise.md").exists()


def test_obsidian_writes_its_sync_log_only_with_a_template(tmp_path: Path) -> None:
    plain = Harness(tmp_path / "plain", "obsidian", templates=default_set("obsidian"))
    plain.source.add_book(1, "One", ["first highlight"])
    plain.sync()
    assert not list(plain.vault.rglob("Readwise Syncs.md"))

    template = (
        "- [[{{date|date('Y-m-d')}}]] {{time}} — Synced {{num_highlights}} "
        "highlight{{num_highlights|pluralize}} from {{num_books}} "
        "document{{num_books|pluralize}}.\n"
        "{% for book in books %}    - {{ book.num_highlights_added}} highlights from "
        "{{ book.title }}\n{%endfor %}"
    )
    tpl = _templates(tmp_path, "obsidian", {"sync_notification.j2": template})
    h = Harness(tmp_path / "custom", "obsidian", templates=tpl)
    h.source.add_book(1, "One", ["first highlight", "second"])
    h.sync()
    text = (h.vault / "Readwise" / "Readwise Syncs.md").read_text(encoding="utf-8")
    assert text.endswith("— Synced 2 highlights from 1 document.\n    - 2 highlights from One\n")


# --- document-tag filters ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_only_and_skip_tags_choose_books_by_document_tag(tmp_path: Path, fmt: Fmt) -> None:
    h = Harness(tmp_path, fmt, only_tags=frozenset({"reading"}), skip_tags=frozenset({"private"}))
    h.source.add_book(1, "Kept", ["kept text"], tags=("#Reading",))
    h.source.add_book(2, "Untagged", ["untagged text"])
    h.source.add_book(3, "Private", ["private text"], tags=("reading", "PRIVATE"))
    summary = h.sync()
    assert summary.created == 1
    expected = "Kept.md" if fmt == "obsidian" else "Kept (highlights).md"
    assert [p.name for p in h.files_on_disk()] == [expected]


def test_tag_filters_are_validated(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    vault.mkdir()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[targets]]\nname = "a"\nformat = "logseq"\nvault = "{vault}"\n'
        'only_tags = ["x", ""]\nskip_tags = "y"\ngroup_by_category = false\n'
    )
    with pytest.raises(ConfigError) as error:
        load_config(config, environ={})
    text = str(error.value)
    assert "targets[0].only_tags: must be a list of document tags" in text
    assert "(no empty tags)" in text
    assert "targets[0].skip_tags: must be a list of document tags" in text
    assert 'targets[0].group_by_category: applies only to format "obsidian"' in text


# --- heading highlights ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_heading_highlights_are_headings_and_survive_adoption_and_merge(
    tmp_path: Path, fmt: Fmt
) -> None:
    h = Harness(tmp_path, fmt)
    h.source.add_book(1, "Unit 12", ["Recall that an operation is commutative"])
    heading = h.source.add_highlight(1, "1.3 Multiplying complex numbers", note=".h4")
    h.source.add_highlight(1, "Multiplication is both commutative and associative")
    h.sync()
    text = h.read(1)
    expected = "#### 1.3 Multiplying complex numbers"
    line = expected + "\n" if fmt == "obsidian" else f"\t- {expected}\n"
    assert line in text and "Location" not in text.split(expected)[1].split("\n")[0]
    # The user edits elsewhere; the heading is found again, not re-added or tombstoned.
    h.write(1, text + ("\nmy line\n" if fmt == "obsidian" else "\n- my line"))
    h.source.add_highlight(1, "A later highlight")
    h.sync()
    after = h.read(1)
    assert after.count(expected) == 1 and heading not in h.page(1).tombstones
    # Renamed upstream: the untouched heading is replaced in place.
    h.source.edit(heading, text="1.3 Multiplying")
    h.sync()
    assert "#### 1.3 Multiplying\n" in h.read(1) + "\n" and expected not in h.read(1)


def test_a_template_can_write_heading_highlights_itself(tmp_path: Path) -> None:
    tpl = _templates(
        tmp_path,
        "obsidian",
        {
            "highlight.j2": "{% if highlight_heading_level %}"
            "{{ '#' * (highlight_heading_level + 1) }} {{ highlight_text }}"
            "{% else %}- {{ highlight_text }}{% endif %}"
        },
    )
    h = Harness(tmp_path, "obsidian", templates=tpl)
    h.source.add_book(1, "Book", ["plain one"])
    h.source.add_highlight(1, "Chapter", note=".h2")
    h.sync()
    assert "\n### Chapter\n" in h.read(1) and "\n- plain one\n" in h.read(1)


# --- Obsidian folders and front matter ---------------------------------------------------------


def test_group_by_category_false_puts_every_page_in_the_folder(tmp_path: Path) -> None:
    from syncd.adapters.obsidian import ObsidianAdapter

    h = Harness(tmp_path, "obsidian")
    h.adapter = ObsidianAdapter(group_by_category=False, templates=TemplateSet(format="obsidian"))
    h.source.add_book(1, "A Book", ["text one"], category="books")
    h.source.add_book(2, "An Article", ["text two"], category="articles")
    h.sync()
    assert sorted(p.relative_to(h.vault).as_posix() for p in h.files_on_disk()) == [
        "Readwise/A Book.md",
        "Readwise/An Article.md",
    ]


def test_front_matter_and_file_name_templates(tmp_path: Path) -> None:
    tpl = _templates(
        tmp_path,
        "obsidian",
        {
            "yaml_front_matter.j2": "---\nauthor: {{ author }}\n---\n",  # with Readwise's --- too
            "file_name.j2": "{{ title }} by {{ author }}/../../escape",
        },
    )
    h = Harness(tmp_path, "obsidian", templates=tpl)
    h.source.add_book(1, "Deep Work", ["a highlight"], author="Cal Newport")
    h.sync()
    [page] = h.files_on_disk()
    assert page.resolve().is_relative_to(h.vault.resolve())
    assert page.name == "Deep Work by Cal Newport-..-..-escape.md"
    assert page.read_text(encoding="utf-8").startswith(
        "---\nauthor: Cal Newport\n---\n# Deep Work\n"
    )
