"""The shipped default templates (syncd/templates/*.j2), hand-compiled to plain Python.

A Jinja render costs a context and an attribute lookup per variable; over a first pass of tens of
thousands of highlights that was the largest single cost. Each function below gives the bytes its
template gives for the same context (tests/unit/test_compiled_templates.py checks them against
Jinja over generated contexts), and is used only while the template file is byte-identical to the
one it was written for (the SHA-256 beside it): an edited template goes through Jinja again.

Missing variables behave like Jinja's ChainableUndefined: they print as "" and are false.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from syncd.notes.render import date_filter, indent_lines, logseq_block, oneline

Context = Mapping[str, Any]
CompiledTemplate = Callable[[Context], str]


def _location(context: Context) -> str:
    label = context.get("highlight_location", "")
    url = context.get("highlight_location_url", "")
    if label and url:
        return f" ([{label}]({url}))"
    if label:
        return f" ({label})"
    return ""


def obsidian_title(context: Context) -> str:
    return f"# {oneline(context.get('title', ''))}\n"


def obsidian_metadata(context: Context) -> str:
    get = context.get
    parts: list[str] = []
    image_url = get("image_url", "")
    if image_url:
        parts.append(f"![rw-book-cover]({image_url})\n\n")
    author = get("author", "")
    parts.append(f"## Metadata\n- Author: {f'[[{oneline(author)}]]' if author else ''}\n")
    parts.append(f"- Full Title: {oneline(get('full_title', ''))}\n")
    parts.append(f"- Category: #{get('category', '')}\n")
    tags = get("document_tags", "")
    if tags:
        parts.append("- Document Tags: " + "".join(f"[[{tag}]] " for tag in tags) + "\n")
    note = get("document_note", "")
    if note:
        parts.append(f"- Document Note: {indent_lines(note, 3)}\n")
    summary = get("summary", "")
    if summary:
        parts.append(f"- Summary: {summary}\n")
    url = get("url", "")
    if url:
        parts.append(f"- URL: {url}\n")
    return "".join(parts)


def obsidian_header(context: Context) -> str:
    if context.get("is_new_page", ""):
        return "\n## Highlights\n"
    if context.get("has_new_highlights", ""):
        day = date_filter(context.get("date", ""), "F j, Y")
        return f"## New highlights added {day} at {context.get('time', '')}\n"
    return ""


def obsidian_highlight(context: Context) -> str:
    get = context.get
    parts = [f"- {indent_lines(get('highlight_text', ''), 2)}{_location(context)}"]
    tags = get("highlight_tags", "")
    if tags:
        parts.append("\n    - Tags: " + "".join(f"[[{tag}]] " for tag in tags))
    note = get("highlight_note", "")
    if note:
        parts.append(f"\n    - Note: {indent_lines(note, 6)}")
    parts.append("\n")
    return "".join(parts)


def logseq_metadata(context: Context) -> str:
    get = context.get
    parts = [
        f"title:: {oneline(get('page_title', ''))}\n",
        f"author:: [[{oneline(get('author', ''))}]]\n",
        f'full-title:: "{oneline(get("full_title", ""))}"\n',
        f"category:: #{get('category', '')}\n",
    ]
    url = get("url", "")
    if url:
        parts.append(f"url:: {oneline(url)}\n")
    note = get("document_note", "")
    if note:
        parts.append(f"document_note:: {oneline(note)}\n")
    tags = get("document_tags", "")
    if tags:
        parts.append("tags:: " + " ".join(f"#[[{oneline(tag)}]]" for tag in tags) + "\n")
    summary = get("summary", "")
    if summary:
        parts.append(f"summary:: {oneline(summary)}\n")
    image_url = get("image_url", "")
    if image_url:
        parts.append(f"![]({image_url})\n")
    return "".join(parts)


def logseq_header(context: Context) -> str:
    if context.get("is_new_page", ""):
        return f"Highlights first synced by [[Readwise]] [[{context.get('date', '')}]]\n"
    if context.get("has_new_highlights", ""):
        return f"New highlights added [[{context.get('date', '')}]] at {context.get('time', '')}\n"
    return "\n"


def logseq_highlight(context: Context) -> str:
    get = context.get
    parts = [logseq_block(f"{get('highlight_text', '')}{_location(context)}", 1)]
    tags = get("highlight_tags", "")
    if tags:
        parts.append(logseq_block("**Tags**: " + "".join(f"#[[{tag}]] " for tag in tags), 2))
    note = get("highlight_note", "")
    if note:
        parts.append(logseq_block(f"**Note**: {note}", 2))
    return "".join(parts)


# template name -> (SHA-256 of the template source the function mirrors, the function)
COMPILED: dict[str, tuple[str, CompiledTemplate]] = {
    "obsidian_title.md.j2": (
        "168ee94ecf280f07f2d340110c62beebda57164f0ddfb08a46f863c67802efc7",
        obsidian_title,
    ),
    "obsidian_metadata.md.j2": (
        "2124de338f21ae695df094eeacb94b28d4b09412e0061eba030af2ee47ac4d5c",
        obsidian_metadata,
    ),
    "obsidian_header.md.j2": (
        "d1906e01b3ef517e57543737c8e10e61081b55a1316d2918ad8839e4a8743565",
        obsidian_header,
    ),
    "obsidian_highlight.md.j2": (
        "afebccd1b283fb804d5ca334ef5be628d48cfc8f4406985a3c1eb4afe1c191d2",
        obsidian_highlight,
    ),
    "logseq_metadata.md.j2": (
        "8f3d4cdab210d9eacf1695259273994d59a0a54335219e6cdb4d1e64c28425f9",
        logseq_metadata,
    ),
    "logseq_header.md.j2": (
        "d3e3bf2148c0dcc9ec1b889186b1549382107e12f5b4bed63f311b4f8e75a95a",
        logseq_header,
    ),
    "logseq_highlight.md.j2": (
        "b60dbe6013de7711f266aef188124b03d16c0fbf4940150045931bbdbd213e87",
        logseq_highlight,
    ),
}
