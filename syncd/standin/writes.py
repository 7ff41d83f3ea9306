"""The stand-in's highlight DETAIL / UPDATE and highlight tag routes (api.md §4).

- `GET /api/v2/highlights/<id>/`: the DETAIL representation (µs timestamps, `updated`).
- `PATCH /api/v2/highlights/<id>/`: JSON or form body; `text` and `note` up to 8191 characters,
  `location`, `url`, `color` (one of the six colours); undocumented keys ignored; 200 with the
  DETAIL representation; bumps `updated_at`.
- `GET /api/v2/highlights/<id>/tags`: `{count, next, previous, results: [{id, name}]}`, one page.
- `POST /api/v2/highlights/<id>/tags/` `{"name": ...}` (up to 127 characters): 200 `{id, name}`.
  [fake] a name the highlight has already gets a second assignment, so a client that sends a
  tag twice leaves visible duplicates.
- `DELETE /api/v2/highlights/<id>/tags/<tag_id>`: 204.

A deleted or unknown highlight (or tag) answers DRF's `404 {"detail": "Not found."}`; a body
that is not JSON answers 400 with DRF's parse-error detail. Routes match with or without a
trailing slash (the server normalises paths first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from syncd.standin.library import HighlightState, Library, UnknownIdError, format_timestamp

HIGHLIGHT_ROUTE = re.compile(r"^/api/v2/highlights/(\d+)(?:/tags(?:/(\d+))?)?$")
_COLOURS = ("yellow", "blue", "pink", "orange", "green", "purple")
_TEXT_LIMIT = 8191
_TAG_LIMIT = 127
_URL_LIMIT = 4095


@dataclass(frozen=True, slots=True)
class WriteAnswer:
    """What a write route answers: a status and a JSON body (None: no body, e.g. 204)."""

    status: int
    body: object = None


_NOT_FOUND = WriteAnswer(404, {"detail": "Not found."})


def is_highlight_route(path: str) -> bool:
    return HIGHLIGHT_ROUTE.match(path) is not None


def detail_json(highlight: HighlightState) -> dict[str, Any]:
    """The DETAIL/LIST representation: fewer keys than export, `updated` (api.md §4)."""
    return {
        "id": highlight.id,
        "text": highlight.text,
        "note": highlight.note if highlight.note is not None else "",
        "location": highlight.location,
        "location_type": highlight.location_type,
        "highlighted_at": format_timestamp(highlight.highlighted_at, "us"),
        "url": highlight.url,
        "color": highlight.color,
        "updated": format_timestamp(highlight.updated_at, "us"),
        "book_id": highlight.book_id,
        "tags": [{"id": tag.id, "name": tag.name} for tag in highlight.tags],
    }


def parse_body(body: bytes, content_type: str) -> dict[str, Any] | WriteAnswer:
    """A JSON object or a form body, as DRF's parsers read them; 400 for unreadable JSON."""
    if not body:
        return {}
    if "json" in content_type:
        try:
            value = json.loads(body)
        except ValueError as exc:
            return WriteAnswer(400, {"detail": f"JSON parse error - {exc}"})
        if not isinstance(value, dict):
            return WriteAnswer(
                400,
                {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
            )
        return value
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in form.items()}


def answer_write(
    library: Library, method: str, path: str, body: bytes, content_type: str
) -> WriteAnswer:
    """Handle one request to a highlight route (authentication and faults are done already)."""
    match = HIGHLIGHT_ROUTE.match(path)
    if match is None:
        return _NOT_FOUND
    highlight_id = int(match[1])
    with library.lock:
        try:
            highlight = library.highlight(highlight_id)
        except UnknownIdError:
            return _NOT_FOUND
        if highlight.is_deleted:
            return _NOT_FOUND
        is_tags = "/tags" in path
        tag_id = int(match[2]) if match[2] else None
        handler = _handler(method, is_tags=is_tags, one_tag=tag_id is not None)
        if handler is None:
            return WriteAnswer(405, {"detail": f'Method "{method}" not allowed.'})
        data = parse_body(body, content_type) if method in ("PATCH", "POST") else {}
        if isinstance(data, WriteAnswer):
            return data
        return handler(library, highlight, tag_id, data)


_Handler = Callable[[Library, HighlightState, "int | None", Mapping[str, Any]], WriteAnswer]


def _handler(method: str, *, is_tags: bool, one_tag: bool) -> _Handler | None:
    if not is_tags:
        return {"GET": _detail, "PATCH": _patch}.get(method)
    if one_tag:
        return {"GET": _one_tag, "DELETE": _delete_tag}.get(method)
    return {"GET": _list_tags, "POST": _post_tag}.get(method)


def _detail(
    library: Library, highlight: HighlightState, _tag: int | None, _data: Mapping[str, Any]
) -> WriteAnswer:
    return WriteAnswer(200, detail_json(highlight))


def _patch(
    library: Library, highlight: HighlightState, _tag: int | None, data: Mapping[str, Any]
) -> WriteAnswer:
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    for name in ("text", "note"):
        if name in data:
            value = data[name]
            if not isinstance(value, str) and not (name == "note" and value is None):
                errors[name] = ["Not a valid string."]
            elif name == "text" and not value:
                errors[name] = ["This field may not be blank."]
            elif value is not None and len(value) > _TEXT_LIMIT:
                errors[name] = [f"Ensure this field has no more than {_TEXT_LIMIT} characters."]
            else:
                changes[name] = value if value is not None else ""
    if "color" in data:
        colour = data["color"]
        if colour not in _COLOURS:
            errors["color"] = [f'"{colour}" is not a valid choice.']
        else:
            changes["color"] = colour
    if "location" in data:
        try:
            changes["location"] = int(data["location"])
        except (TypeError, ValueError):
            errors["location"] = ["A valid integer is required."]
    if "url" in data:
        url = data["url"]
        if not isinstance(url, str) or len(url) > _URL_LIMIT:
            errors["url"] = [f"Ensure this field has no more than {_URL_LIMIT} characters."]
    if errors:
        return WriteAnswer(400, errors)
    if changes:
        library.edit_highlight(highlight.id, **changes)
    return WriteAnswer(200, detail_json(library.highlight(highlight.id)))


def _list_tags(
    library: Library, highlight: HighlightState, _tag: int | None, _data: Mapping[str, Any]
) -> WriteAnswer:
    results = [{"id": tag.id, "name": tag.name} for tag in highlight.tags]
    return WriteAnswer(
        200, {"count": len(results), "next": None, "previous": None, "results": results}
    )


def _one_tag(
    library: Library, highlight: HighlightState, tag_id: int | None, _data: Mapping[str, Any]
) -> WriteAnswer:
    for tag in highlight.tags:
        if tag.id == tag_id:
            return WriteAnswer(200, {"id": tag.id, "name": tag.name})
    return _NOT_FOUND


def _post_tag(
    library: Library, highlight: HighlightState, _tag: int | None, data: Mapping[str, Any]
) -> WriteAnswer:
    if "name" not in data:
        return WriteAnswer(400, {"name": ["This field is required."]})
    name = data["name"]
    if not isinstance(name, str):
        return WriteAnswer(400, {"name": ["Not a valid string."]})
    if not name.strip():
        return WriteAnswer(400, {"name": ["This field may not be blank."]})
    if len(name) > _TAG_LIMIT:
        return WriteAnswer(
            400, {"name": [f"Ensure this field has no more than {_TAG_LIMIT} characters."]}
        )
    tag = library.add_highlight_tag(highlight.id, name)
    return WriteAnswer(200, {"id": tag.id, "name": tag.name})


def _delete_tag(
    library: Library, highlight: HighlightState, tag_id: int | None, _data: Mapping[str, Any]
) -> WriteAnswer:
    if tag_id is None or not library.remove_highlight_tag(highlight.id, tag_id):
        return _NOT_FOUND
    return WriteAnswer(204)
