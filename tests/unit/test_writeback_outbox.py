"""The write-back outbox: every change arrives exactly once, whatever moment a pass dies at.

A fake Readwise keeps highlights in memory (a tag POSTed twice shows up twice, as in the
stand-in); a pass is "killed" by an exception that no code catches, raised at every point of
the sending in turn (before a request reaches Readwise, or after Readwise applied it and before
the answer came back); a new WriteBack over the same state store then resumes the outbox."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from syncd.errors import ReadwiseUnavailable
from syncd.model import Book, Highlight
from syncd.sync.state import StateStore
from syncd.writeback.outbox import Op, Outbox, OutboxRow, apply_to_book
from syncd.writeback.protocol import HighlightGone, WriteRejected
from syncd.writeback.push import WriteBack


class Killed(BaseException):
    """kill -9: nothing after it runs (not an Exception: no handler catches it)."""


@dataclass
class FakeReadwise:
    notes: dict[int, str] = field(default_factory=dict)
    texts: dict[int, str] = field(default_factory=dict)
    tags: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    calls: list[tuple[str, int, str]] = field(default_factory=list)
    kill_at: int | None = None  # kill on this call number (1-based) ...
    kill_after_apply: bool = False  # ... before it reaches Readwise, or once it is applied
    gone: set[int] = field(default_factory=set)
    refuse: set[int] = field(default_factory=set)
    unavailable: bool = False
    _next_tag: int = 100

    def _call(self, kind: str, hid: int, detail: str = "") -> None:
        self.calls.append((kind, hid, detail))
        if self.unavailable:
            raise ReadwiseUnavailable("Readwise unavailable (test)")
        if hid in self.gone:
            raise HighlightGone(kind, f"/api/v2/highlights/{hid}/")
        if len(self.calls) == self.kill_at and not self.kill_after_apply:
            raise Killed

    def _applied(self) -> None:
        if len(self.calls) == self.kill_at and self.kill_after_apply:
            raise Killed

    def update_highlight(self, highlight_id: int, fields: Mapping[str, str]) -> dict[str, Any]:
        self._call("PATCH", highlight_id, ",".join(fields))
        if highlight_id in self.refuse:
            raise WriteRejected("PATCH", "/x/", "note", "Ensure this field has no more than 8191")
        self.notes.update({highlight_id: fields["note"]} if "note" in fields else {})
        self.texts.update({highlight_id: fields["text"]} if "text" in fields else {})
        self._applied()
        return {}

    def highlight_tags(self, highlight_id: int) -> list[tuple[int, str]]:
        self._call("GET", highlight_id)
        answer = list(self.tags.get(highlight_id, []))
        self._applied()
        return answer

    def add_highlight_tag(self, highlight_id: int, name: str) -> tuple[int, str]:
        self._call("POST", highlight_id, name)
        self._next_tag += 1
        self.tags.setdefault(highlight_id, []).append((self._next_tag, name))
        self._applied()
        return self._next_tag, name

    def delete_highlight_tag(self, highlight_id: int, tag_id: int) -> None:
        self._call("DELETE", highlight_id, str(tag_id))
        self.tags[highlight_id] = [t for t in self.tags[highlight_id] if t[0] != tag_id]
        self._applied()


BOOK = Book(
    id=1,
    title="T",
    highlights=(
        Highlight(id=11, book_id=1, text="one"),
        Highlight(id=12, book_id=1, text="two", tags=("old",)),
    ),
)
CHANGES: list[tuple[int, int, str, Op, str]] = [
    (11, 1, "obs", "note", "a note ✍️"),
    (11, 1, "obs", "tag_add", "to read 📚"),
    (12, 1, "lsq", "tag_add", "idea"),
    (12, 1, "lsq", "tag_remove", "old"),
    (12, 1, "lsq", "text", "two, fixed"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.open(tmp_path / "state")
    with store.transaction():
        store.merge_book(BOOK, rev=store.next_rev(), full=False)
    yield store
    store.close()


def fake() -> FakeReadwise:
    return FakeReadwise(tags={12: [(1, "old")]})


def assert_all_arrived_once(readwise: FakeReadwise, store: StateStore) -> None:
    assert readwise.notes == {11: "a note ✍️"}
    assert readwise.texts == {12: "two, fixed"}
    assert sorted(n for _i, n in readwise.tags[11]) == ["to read 📚"]
    assert sorted(n for _i, n in readwise.tags[12]) == ["idea"]
    assert Outbox(store).open_rows() == []
    cached = store.load_book(1)
    assert cached is not None
    one, two = cached.highlights
    assert (one.note, one.tags) == ("a note ✍️", ("to read 📚",))
    assert (two.text, sorted(two.tags)) == ("two, fixed", ["idea"])


def test_every_change_is_sent_once_and_applied_to_the_cache(store: StateStore) -> None:
    readwise = fake()
    Outbox(store).add_intents(CHANGES)
    with capture_logs() as logs:
        WriteBack(readwise).resume(store)
    assert_all_arrived_once(readwise, store)
    assert [c[0] for c in readwise.calls] == ["PATCH", "POST", "POST", "GET", "DELETE", "PATCH"]
    assert [e["event"] for e in logs].count("writeback.sent") == len(CHANGES)
    rows = Outbox(store).finished_rows()
    assert {r.state for r in rows} == {"confirmed"}


def test_the_same_intent_is_not_queued_twice(store: StateStore) -> None:
    outbox = Outbox(store)
    assert len(outbox.add_intents(CHANGES)) == len(CHANGES)
    assert outbox.add_intents(CHANGES) == []
    assert len(outbox.open_rows()) == len(CHANGES)


# Calls a clean run makes (PATCH, POST, POST, GET, DELETE, PATCH): a kill at each one, before it
# reaches Readwise and after Readwise applied it.
KILL_POINTS = [(n, after) for n in range(1, 7) for after in (False, True)]


@pytest.mark.parametrize(("kill_at", "after_apply"), KILL_POINTS)
def test_a_kill_at_any_call_neither_loses_nor_doubles_a_change(
    store: StateStore, kill_at: int, after_apply: bool
) -> None:
    readwise = fake()
    readwise.kill_at, readwise.kill_after_apply = kill_at, after_apply
    Outbox(store).add_intents(CHANGES)
    with pytest.raises(Killed):
        WriteBack(readwise).resume(store)
    readwise.kill_at = None
    WriteBack(readwise).resume(store)  # the restart: the outbox first
    assert_all_arrived_once(readwise, store)  # each tag there once: never POSTed twice


def test_a_404_drops_the_change_with_a_log_line(store: StateStore) -> None:
    readwise = fake()
    readwise.gone.add(11)
    Outbox(store).add_intents(CHANGES)
    with capture_logs() as logs:
        report = WriteBack(readwise)
        report.resume(store)
    dropped = [e for e in logs if e["event"] == "writeback.dropped"]
    assert {e["highlight_id"] for e in dropped} == {11}
    assert len(report.report.dropped) == 2 and len(report.report.sent) == 3
    assert Outbox(store).open_rows() == []


def test_a_400_is_logged_with_the_field_and_not_retried(store: StateStore) -> None:
    readwise = fake()
    readwise.refuse.add(11)
    Outbox(store).add_intents(CHANGES[:1])
    with capture_logs() as logs:
        WriteBack(readwise).resume(store)
    (event,) = [e for e in logs if e["event"] == "writeback.rejected"]
    assert event["field"] == "note" and "8191" in event["message"]
    assert [c[0] for c in readwise.calls] == ["PATCH"]
    (row,) = Outbox(store).finished_rows()
    assert row.state == "rejected" and "note" in row.detail


def test_readwise_away_leaves_the_changes_waiting(store: StateStore) -> None:
    readwise = fake()
    readwise.unavailable = True
    Outbox(store).add_intents(CHANGES)
    writeback = WriteBack(readwise)
    writeback.resume(store)
    assert len(writeback.report.waiting) == len(CHANGES)
    assert len(Outbox(store).open_rows()) == len(CHANGES)
    readwise.unavailable = False
    WriteBack(readwise).resume(store)
    assert_all_arrived_once(readwise, store)


def test_dry_run_sends_nothing(store: StateStore) -> None:
    readwise = fake()
    Outbox(store).add_intents(CHANGES)
    writeback = WriteBack(readwise)
    writeback.resume(store, dry_run=True)
    assert readwise.calls == []
    assert len(writeback.report.waiting) == len(CHANGES)
    assert writeback.report.dry_run_lines()[0].startswith("waiting  obs: highlight 11: note")


def test_apply_to_book_is_a_no_op_when_already_there() -> None:
    row = OutboxRow(1, 12, 1, "obs", "tag_add", "old", "confirmed")
    assert apply_to_book(BOOK, row) is BOOK
    missing = OutboxRow(1, 99, 1, "obs", "note", "x", "confirmed")
    assert apply_to_book(BOOK, missing) is BOOK
