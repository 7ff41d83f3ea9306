"""What `syncd status` shows of the write-back, per target: sent, waiting, conflicts (with both
values) and what is not sent (with the reason)."""

from __future__ import annotations

from typing import Any

from syncd.sync.state import StateStore
from syncd.writeback.outbox import Outbox, OutboxRow

_SHOWN = 20  # finished changes listed per target


def _row(row: OutboxRow) -> dict[str, Any]:
    item: dict[str, Any] = {
        "highlight_id": row.highlight_id,
        "book_id": row.book_id,
        "change": row.op,
        "value": row.value,
        "state": row.state,
        "at": row.updated_at,
    }
    if row.detail:
        item["detail"] = row.detail
    return item


def writeback_status(store: StateStore, target: str) -> dict[str, Any]:
    outbox = Outbox(store)
    notes = outbox.notes(target)
    finished = [r for r in outbox.finished_rows() if r.origin == target][:_SHOWN]
    return {
        "waiting": [_row(r) for r in outbox.open_rows() if r.origin == target],
        "sent": [_row(r) for r in finished if r.state == "confirmed"],
        "failed": [_row(r) for r in finished if r.state != "confirmed"],
        "conflicts": [
            {
                "book_id": n.book_id,
                "highlight_id": n.highlight_id,
                "field": n.field,
                "reason": n.reason,
                "yours": n.mine,
                "readwise": n.upstream,
            }
            for n in notes
            if n.kind == "conflict"
        ],
        "not_sent": [
            {
                "book_id": n.book_id,
                "highlight_id": n.highlight_id,
                "field": n.field,
                "reason": n.reason,
                "yours": n.mine,
            }
            for n in notes
            if n.kind == "not_sent"
        ],
    }


def writeback_status_lines(status: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for row in status["sent"]:
        lines.append(f"  sent to Readwise {row['at']}: {_change(row)}")
    for row in status["waiting"]:
        lines.append(f"  waiting to be sent: {_change(row)}")
    for row in status["failed"]:
        lines.append(f"  not sent ({row.get('detail', row['state'])}): {_change(row)}")
    for item in status["conflicts"]:
        lines.append(
            f"  write-back conflict in book {item['book_id']}, highlight {item['highlight_id']}"
            f" ({item['field']}, {item['reason']}): nothing sent, your text kept\n"
            f"    yours:    {item['yours'].strip()[:200]!r}\n"
            f"    Readwise: {item['readwise'].strip()[:200]!r}"
        )
    for item in status["not_sent"]:
        where = f"highlight {item['highlight_id']}" if item["highlight_id"] else "page"
        extra = f": {item['yours'].strip()[:80]!r}" if item["yours"] else ""
        lines.append(f"  not sent, book {item['book_id']} {where} ({item['reason']}){extra}")
    return lines


def _change(row: dict[str, Any]) -> str:
    what = {"note": "note", "text": "text", "tag_add": "add tag", "tag_remove": "remove tag"}
    value = str(row["value"]).strip()[:120]
    return f"highlight {row['highlight_id']}: {what.get(row['change'], row['change'])} {value!r}"
