"""A highlight template rendered for a whole section in one loop gives, per highlight, the very
text it gives rendered alone, whatever the template does at its ends."""

from __future__ import annotations

import pytest

from syncd.notes.dialect import compile_template

ITEMS = [
    {"highlight_text": "one", "highlight_note": "", "highlight_tags": ["a", "b"]},
    {"highlight_text": "two\n  lines", "highlight_note": "a note", "highlight_tags": []},
    {"highlight_text": "", "highlight_note": "", "highlight_tags": []},
]
SOURCES = [
    "- {{ highlight_text }}\n",
    "- {{ highlight_text }}",
    "\n> {{ highlight_text }}\n\n---\n\n",
    "{% if highlight_note %}{{ highlight_note }}{% endif -%}\n",
    "{%- for tag in highlight_tags -%} #{{ tag }}{%- endfor %}\n\n\n",
    "{% macro q(x) %}> {{ x }}{% endmacro %}{{ q(highlight_text) }}\n",
    "{{ title }}: {{ highlight_text|upper }}{{ ' (noted)' if highlight_note }}\n",
]


@pytest.mark.parametrize("source", SOURCES)
def test_render_each_equals_rendering_each_alone(source: str) -> None:
    template = compile_template("highlight", "highlight.j2", source)
    document = {"title": "T"}
    alone = [template.render({**document, **item}) for item in ITEMS]
    assert template.render_each(document, ITEMS) == alone


def test_a_template_using_jinjas_loop_is_rendered_alone() -> None:
    template = compile_template(
        "highlight", "h.j2", "{{ loop.index if loop }}- {{ highlight_text }}"
    )
    assert template.render_each({}, ITEMS[:2]) == ["- one", "- two\n  lines"]
