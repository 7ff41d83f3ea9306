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
HIGHLIGHT_VARIABLES = (
    "highlight_text",
    "highlight_location",
    "highlight_location_url",
    "highlight_note",
    "highlight_tags",
    "highlight_id",
    "highlight_date",
    "highlight_heading_level",  # syncd: 1-6 for a Reader heading highlight (".h1".."h6"), else 0
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


@dataclass(frozen=True)
class UserTemplate:
    """One compiled template file."""

    slot: str
    path: str  # as shown in messages
    source: str
    template: jinja2.Template

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


def compile_template(slot: str, path: str, source: str) -> UserTemplate:
    """Compile `source` (the file's text) in the sandbox; TemplateProblem names file:line."""
    if source.endswith("\n"):  # the editor's final newline is not part of the template
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


def obsidian_values(
    context: Mapping[str, Any], template: UserTemplate | None = None
) -> dict[str, Any]:
    """The context with multi-line values indented as Readwise's Obsidian export does; the
    note as `template` (the highlight template) needs it, see note_indent."""
    out = dict(context)
    widths = dict(_OBSIDIAN_INDENTS)
    if template is not None:
        widths["highlight_note"] = note_indent(template.source)
    for name, width in widths.items():
        value = out.get(name)
        if isinstance(value, str) and value:
            out[name] = indent_lines(value, width)
    for name in _ONE_LINE:
        value = out.get(name)
        if isinstance(value, str) and value:
            out[name] = oneline(value)
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

_LEADING = re.compile(r"^[ \t]*")


def outline(output: str, level: int) -> str:
    """A template's output as Logseq blocks, the first at `level` (tabs): one block per line,
    four spaces or a tab deeper is a child (never more than one level below its parent), a
    value's marked line breaks continue the block above. Blank lines make no block."""
    blocks: list[tuple[int, list[str]]] = []
    for line in normalize_newlines(output).split("\n"):
        indent = _LEADING.match(line)
        assert indent is not None
        rest = line[indent.end() :]
        if rest.startswith(CONTINUATION) and blocks:
            blocks[-1][1].append(rest[1:].replace(CONTINUATION, ""))
            continue
        rest = rest.replace(CONTINUATION, "")
        if not rest.strip():
            continue
        depth = indent.group().count("\t") + len(indent.group().replace("\t", "")) // 4
        blocks.append((depth, [rest.rstrip()]))
    out: list[str] = []
    parents: list[int] = []  # depths of the open blocks, outermost first
    for depth, lines in blocks:
        while parents and parents[-1] >= depth:
            parents.pop()
        nesting = len(parents)
        parents.append(depth)
        out.append(_block(lines, level + nesting))
    return "".join(out)


def _block(lines: Sequence[str], level: int) -> str:
    """Logseq's own serialisation: tabs, `- `, continuation lines at tabs plus two spaces."""
    indent = "\t" * level
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
