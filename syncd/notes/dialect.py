"""Readwise's template dialect, for the templates a person pasted from Readwise's preferences page.

Readwise renders export templates server-side with Jinja2 plus Django's `date` and `pluralize`
filters. A user's templates run here in Jinja2's immutable sandbox (no attribute access to
Python internals, no way to reach files or the network), with undefined names printing as "", and
the same variables Readwise documents (`syncd.notes.render` builds them from the model).

What Readwise does around a template, and so syncd does too:
- A template file's one final newline is not part of the template (Readwise's text boxes have
  none; an editor adds one).
- Obsidian: a multi-line value arrives indented for the list item it usually sits in:
  `highlight_text` continues at two spaces, `document_note` at three, `highlight_note` at the
  content column of the list item its placeholder is on (six in the default `    - Note:`,
  none on a line that is no list item), blank lines dropped (so `- {{ highlight_text }}` stays
  one list item).
- Logseq: every line of the output is one block, and four spaces (or a tab) of indentation make
  it a child of the line above; a value's own line breaks stay inside its block as continuation
  lines, escaped so that Logseq's parser reads the block back as one block.

`TemplateProblem` carries the file and line of what went wrong, for `syncd check` and for the
log line of a book that could not be rendered.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox

from syncd.errors import TemplateError
from syncd.notes.render import (
    HIGHLIGHT_VARIABLES,
    date_filter,
    indent_lines,
    logseq_escape,
    normalize_newlines,
    oneline,
    pluralize,
)

# A value's own line break, as the Logseq outline conversion sees it: "\n" + this mark. Filters
# that split or replace "\n" still see a line break; stray marks are dropped after conversion.
CONTINUATION = "\x1f"

DOCUMENT_VARIABLES = (
    "title",
    "full_title",
    "author",
    "category",
    "url",
    "image_url",
    "document_tags",
    "summary",
    "document_note",
    "source",
    "book_id",
    "published_date",
    "last_highlighted_date",
    "highlights_url",
    "num_highlights",
    "date",
    "time",
    "is_new_page",
    "has_new_highlights",
)
NOTIFICATION_VARIABLES = ("date", "time", "num_highlights", "num_books", "books")
# What each template may use beyond Jinja's own names (loop, range, ...).
SLOT_VARIABLES: dict[str, tuple[str, ...]] = {
    "file_name": DOCUMENT_VARIABLES,
    "page_title": DOCUMENT_VARIABLES,
    "page_metadata": (*DOCUMENT_VARIABLES, "page_title"),
    "highlights_header": (*DOCUMENT_VARIABLES, "page_title"),
    "highlight": (*DOCUMENT_VARIABLES, "page_title", *HIGHLIGHT_VARIABLES),
    "yaml_front_matter": (*DOCUMENT_VARIABLES, "page_title"),
    "sync_notification": NOTIFICATION_VARIABLES,
}
_JINJA_GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace", "loop"})


class TemplateProblem(TemplateError):
    """A template that cannot be compiled or rendered: which file, which line, what."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


@functools.cache
def sandbox() -> jinja2.sandbox.ImmutableSandboxedEnvironment:
    """The one environment user templates run in."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        autoescape=False,
        undefined=jinja2.ChainableUndefined,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters.update(date=date_filter, pluralize=pluralize)
    return env


# Between the highlights of one looped render (see UserTemplate.render_each): NUL is in no
# Markdown a person writes, and unlike the ASCII separators it is no whitespace that a
# template's `-%}` would trim away.
_SEPARATOR = "\x00"


@dataclass(frozen=True, eq=False)
class UserTemplate:
    """One compiled template file."""

    slot: str
    path: str  # as shown in messages
    source: str
    template: jinja2.Template

    def render_each(
        self, document: Mapping[str, Any], items: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """`render({**document, **item})` for every item. A Jinja render per highlight costs a
        context each time (most of a first pass): one render over all items, the highlight's
        variables bound by the loop, gives the same texts in a fraction of the time."""
        looped = _looped(self)
        if looped is None or any(
            _SEPARATOR in value
            for item in items
            for value in item.values()
            if isinstance(value, str)
        ):
            return [self.render({**document, **item}) for item in items]
        rows = [tuple(item.get(name, "") for name in HIGHLIGHT_VARIABLES) for item in items]
        try:
            parts = looped.render({**document, "rw_rows": rows}).split(_SEPARATOR)
        except Exception:
            parts = []  # rendered one by one below, so the error names this template's line
        if len(parts) == len(items) + 1:
            return parts[:-1]
        return [self.render({**document, **item}) for item in items]

    def render(self, context: Mapping[str, Any]) -> str:
        try:
            return self.template.render(context)
        except jinja2.TemplateError as exc:  # includes the sandbox's SecurityError
            raise TemplateProblem(
                self.path, _line_of(exc.__traceback__, self.path), str(exc)
            ) from exc
        except Exception as exc:  # a filter that raised (ValueError, ZeroDivisionError, ...)
            message = f"{type(exc).__name__}: {exc}"
            raise TemplateProblem(
                self.path, _line_of(exc.__traceback__, self.path), message
            ) from exc


@functools.cache
def _looped(template: UserTemplate) -> jinja2.Template | None:
    """The highlight template wrapped in a loop over rows of highlight variables; None when it
    uses Jinja's `loop` itself (it would see ours)."""
    if template.slot != "highlight" or uses(template, "loop"):
        return None
    head = "{% for " + ", ".join(HIGHLIGHT_VARIABLES) + " in rw_rows %}"
    # Rendered alone, Jinja drops the source's last newline (keep_trailing_newline=False); in
    # the loop it would be no longer last: drop it here, so both give the same text.
    source = template.source.removesuffix("\n")
    try:
        return sandbox().from_string(head + source + _SEPARATOR + "{% endfor %}")
    except jinja2.TemplateError:
        return None


def compile_template(slot: str, path: str, source: str) -> UserTemplate:
    """Compile `source` (the file's text) in the sandbox; TemplateProblem names file:line."""
    # The editor's final newline is not part of the template (and Jinja, keeping no trailing
    # newline, drops one more: a file may end with a blank line too).
    if source.endswith("\n"):
        source = source[:-1]
    env = sandbox()
    try:
        # Compiled under the file's path, so a render error's traceback names its line.
        code = env.compile(source, filename=path)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(path, exc.lineno, exc.message or "syntax error") from exc
    template = env.template_class.from_code(env, code, env.make_globals(None))
    return UserTemplate(slot=slot, path=path, source=source, template=template)


def _line_of(traceback: TracebackType | None, path: str) -> int | None:
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == path:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def unknown_names(template: UserTemplate) -> list[str]:
    """Warnings for names the template uses that Readwise never sets (they print as "")."""
    known = SLOT_VARIABLES[template.slot]
    used = jinja2.meta.find_undeclared_variables(sandbox().parse(template.source))
    warnings = []
    for name in sorted(used - set(known) - _JINJA_GLOBALS):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        line = _first_line_using(template.source, name)
        where = f"{template.path}:{line}" if line else template.path
        warnings.append(f'{where}: "{name}" is not a Readwise variable; it prints as ""{hint}')
    return warnings


def _first_line_using(source: str, name: str) -> int | None:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for number, line in enumerate(source.split("\n"), 1):
        if pattern.search(line):
            return number
    return None


def uses(template: UserTemplate, name: str) -> bool:
    return name in jinja2.meta.find_undeclared_variables(sandbox().parse(template.source))


# --- values as Readwise hands them to a template ---------------------------------------------

_OBSIDIAN_INDENTS = {"highlight_text": 2, "highlight_note": 6, "document_note": 3}
_ONE_LINE = ("title", "full_title", "author", "page_title")


_NOTE_PLACEHOLDER = re.compile(r"^([ \t]*)([-*+][ \t])?.*\{\{[^}]*\bhighlight_note\b")


@functools.cache
def note_indent(source: str) -> int:
    """How far a highlight template's note continues: to the content column of the list item
    its `{{ highlight_note }}` sits in (the default `    - Note: ...` gives 6), and not at all
    on a line that is no list item (matt2ology's `{{ highlight_note }}` paragraph above a quote
    continues at column 0 in the real pages). 6 when the template prints no note."""
    for line in source.split("\n"):
        match = _NOTE_PLACEHOLDER.match(line)
        if match:
            indent = len(match[1].expandtabs(4))
            return indent + 2 if match[2] else indent
    return _OBSIDIAN_INDENTS["highlight_note"]


def obsidian_values(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context with multi-line values indented as Readwise's Obsidian export does (a
    highlight's own values: obsidian_item_values, with the note width of its template)."""
    out = dict(context)
    for name, width in _OBSIDIAN_INDENTS.items():
        value = out.get(name)
        if isinstance(value, str) and value:
            out[name] = indent_lines(value, width)
    for name in _ONE_LINE:
        value = out.get(name)
        if isinstance(value, str) and value:
            out[name] = oneline(value)
    return out


def obsidian_item_values(
    item: Mapping[str, Any], *, note_width: int = _OBSIDIAN_INDENTS["highlight_note"]
) -> dict[str, Any]:
    """A highlight's own variables as Readwise hands them to an Obsidian template; the note
    continues at `note_width` (see note_indent)."""
    out = dict(item)
    widths = {"highlight_text": _OBSIDIAN_INDENTS["highlight_text"], "highlight_note": note_width}
    for name, width in widths.items():
        value = out.get(name)
        if isinstance(value, str) and value:
            out[name] = indent_lines(value, width)
    return out


def logseq_values(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context for a Logseq template: document values on one line (they go into page
    properties and headers), highlight text and note escaped and marked for continuation."""
    out = dict(context)
    for name, value in context.items():
        if not isinstance(value, str) or not value:
            continue
        value = value.replace(CONTINUATION, "")
        if name in ("highlight_text", "highlight_note"):
            # Leading space would read as indentation; trailing space stays before the link.
            escaped = logseq_escape(normalize_newlines(value).lstrip())
            out[name] = escaped.replace("\n", "\n" + CONTINUATION)
        elif "\n" in value or "\r" in value:
            out[name] = oneline(value)
        else:
            out[name] = value
    return out


# --- Logseq: template output -> outline blocks -------------------------------------------------


def outline(output: str, level: int) -> str:
    """A template's output as Logseq blocks, the first at `level` (tabs): one block per line,
    four spaces or a tab deeper is a child (never more than one level below its parent), a
    value's marked line breaks continue the block above. Blank lines make no block."""
    if "\r" in output:
        output = normalize_newlines(output)
    blocks: list[tuple[int, list[str]]] = []  # (nesting, lines)
    depths: list[int] = []  # indentation of the open blocks, outermost first
    for line in output.split("\n"):
        rest = line.lstrip(" \t")
        if not rest:
            continue
        if rest[0] == CONTINUATION and blocks:
            blocks[-1][1].append(
                rest[1:].replace(CONTINUATION, "") if CONTINUATION in rest[1:] else rest[1:]
            )
            continue
        if CONTINUATION in rest:
            rest = rest.replace(CONTINUATION, "")
            if not rest.strip():
                continue
        elif rest.isspace():
            continue
        width = len(line) - len(rest)
        depth = 0
        if width:
            tabs = line.count("\t", 0, width)
            depth = tabs + (width - tabs) // 4
        while depths and depths[-1] >= depth:
            depths.pop()
        blocks.append((len(depths), [rest.rstrip()]))
        depths.append(depth)
    return "".join(_block(lines, level + nesting) for nesting, lines in blocks)


def _block(lines: Sequence[str], level: int) -> str:
    """Logseq's own serialisation: tabs, `- `, continuation lines at tabs plus two spaces."""
    indent = "\t" * level
    if len(lines) == 1:
        return f"{indent}- {lines[0]}\n" if lines[0] else f"{indent}-\n"
    first, *rest = "\n".join(lines).rstrip().split("\n")
    head = f"{indent}- {first}" if first else f"{indent}-"
    return head + "".join(f"\n{indent}  {line}" for line in rest) + "\n"


def one_line_output(output: str) -> str:
    """A template output that must be one line (a title, a file name): line breaks are spaces."""
    return oneline(output.replace("\n" + CONTINUATION, "\n").replace(CONTINUATION, "")).strip()


def property_lines(output: str) -> str:
    """Logseq page metadata: the output's lines as written, a value's line breaks as spaces
    (a page property is one line), blank lines at either end dropped; ends with a newline.
    Only the output's end loses its trailing spaces, not each line: Readwise trims the text
    box's output as a whole (a real page keeps `abbreviated-title:: $2.00 a Day ` with its
    space, yet ends `document_type::` where the template printed an empty value)."""
    text = normalize_newlines(output).replace("\n" + CONTINUATION, " ").replace(CONTINUATION, "")
    lines = text.rstrip().split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "".join((line if line.strip() else "") + "\n" for line in lines)


def read_template_file(path: Path) -> str:
    """A template file's text; TemplateProblem when it is unreadable or not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TemplateProblem(str(path), None, f"cannot be read: {exc.strerror or exc}") from exc
    if len(data) > 1_000_000:
        raise TemplateProblem(str(path), None, "is larger than 1 MB; not a template")
    try:
        return normalize_newlines(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise TemplateProblem(str(path), None, f"is not UTF-8 text ({exc.reason})") from exc
