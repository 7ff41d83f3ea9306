"""What "Readwise" changes between two `syncd demo` runs, so a second run shows the merge.

Each demo run starts a fresh stand-in from the sample library. From the second run on, the
changes of the earlier runs are replayed (so the stand-in holds what syncd already saw), then
three new ones are made, as a person reading would make them in Readwise:

- a highlight edited in a book whose note you edited (the demo edits one note itself, and says
  so, if you edited none): syncd replaces that block in place and keeps your edit;
- a highlight added to that book: appended in a "New highlights added" section;
- a highlight deleted in another book: removed (kept if you had edited it).

After the pass, `describe` reads each note back and says what happened to each change. The
changes made so far live in `<demo folder>/demo-changes.json`.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from syncd.errors import VaultError
from syncd.standin import Library
from syncd.sync.state import PAGE_LIVE, PageRow, StateStore

LOG_NAME = "demo-changes.json"
_EDIT_MARK = re.compile(r" \(edited in Readwise, demo run \d+\)$")
_YOUR_LINE = "A line of mine, added by `syncd demo` as if you had typed it."


@dataclass(frozen=True)
class Change:
    run: int
    kind: str  # "edit", "add" or "delete"
    book_id: int
    highlight_id: int
    text: str  # the new text (edit, add) or the text removed (delete)


@dataclass(frozen=True)
class DemoTarget:
    name: str
    vault: Path


def _load_log(root: Path) -> tuple[int, list[Change]]:
    try:
        data = json.loads((root / LOG_NAME).read_text(encoding="utf-8"))
        return int(data["runs"]), [Change(**item) for item in data["changes"]]
    except FileNotFoundError:
        return 0, []
    except (ValueError, KeyError, TypeError) as exc:
        raise VaultError(
            f"{root / LOG_NAME}: not the demo's change log ({exc}); delete it to start over"
        ) from exc


def save_log(root: Path, runs: int, changes: list[Change]) -> None:
    data = {"runs": runs, "changes": [asdict(c) for c in changes]}
    (root / LOG_NAME).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _apply(library: Library, change: Change) -> None:
    if change.kind == "edit":
        library.edit_highlight(change.highlight_id, text=change.text)
    elif change.kind == "add":
        added = library.add_highlight(change.book_id, text=change.text)
        assert added == change.highlight_id, "the sample library no longer replays the same ids"
    else:
        library.delete_highlight(change.highlight_id)


@dataclass
class DemoRound:
    run: int  # 1 for the first demo run
    earlier: list[Change]
    made: list[Change]
    edited_for_you: Path | None = None  # the note the demo edited in your place, if any

    @classmethod
    def prepare(cls, root: Path, library: Library, targets: list[DemoTarget]) -> DemoRound:
        """Replay the earlier runs' changes, then (from the second run) make this run's."""
        runs, earlier = _load_log(root)
        state_dir = root / "state"
        if runs == 0 and (state_dir / "state.sqlite3").exists():
            runs = 1  # a demo folder from before this log existed
        for change in earlier:
            _apply(library, change)
        current = cls(run=runs + 1, earlier=earlier, made=[])
        if current.run > 1:
            with contextlib.closing(StateStore.open(state_dir)) as store:
                current._make_changes(library, store, targets)
        return current

    def _make_changes(self, library: Library, store: StateStore, targets: list[DemoTarget]) -> None:
        first = targets[0]
        pages = {p.book_id: p for p in store.pages(first.name) if p.status == PAGE_LIVE and p.path}
        # Device-only books (the demo's Kindle) have pages but are not in the library.
        snapshot = library.snapshot()
        live = {book_id: snapshot.highlights_of(book_id) for book_id in pages}
        candidates = [b for b in sorted(pages) if live.get(b)]
        if len(candidates) < 2:
            return  # everything deleted by now: nothing left to show
        edited = [b for b in candidates if _user_edited(first.vault, pages[b])]
        if edited:
            book_id = edited[0]
        else:
            book_id = candidates[0]
            note = first.vault / pages[book_id].path
            with note.open("a", encoding="utf-8") as file:
                file.write(f"\n{_YOUR_LINE}\n")
            self.edited_for_you = note
        edit = live[book_id][-1]
        new_text = f"{_EDIT_MARK.sub('', edit.text)} (edited in Readwise, demo run {self.run})"
        library.edit_highlight(edit.id, text=new_text)
        added_text = f"A new highlight, added in Readwise for demo run {self.run}."
        added = library.add_highlight(book_id, text=added_text)
        other = next(b for b in candidates if b != book_id)
        gone = live[other][0]
        library.delete_highlight(gone.id)
        self.made = [
            Change(self.run, "edit", book_id, edit.id, new_text),
            Change(self.run, "add", book_id, added, added_text),
            Change(self.run, "delete", other, gone.id, gone.text),
        ]

    def describe(self, library: Library, store: StateStore, targets: list[DemoTarget]) -> list[str]:
        """What happened to each change in each target, read back from the notes."""
        if not self.made:
            return []
        lines = [
            f"Demo run {self.run}: the stand-in Readwise changed 3 highlights since the last run."
        ]
        if self.edited_for_you is not None:
            lines.append(
                f"(You had not edited a note, so the demo added a line to {self.edited_for_you}"
                " as if you had.)"
            )
        for change in self.made:
            title = library.book(change.book_id).readable_title
            what = {
                "edit": f'Edited a highlight in "{title}" (you edited its {targets[0].name} note):',
                "add": f'Added a highlight to "{title}":',
                "delete": f'Deleted a highlight in "{title}":',
            }[change.kind]
            lines.append(what)
            for target in targets:
                lines.append(f"  {target.name}: {_outcome(change, target, store)}")
        lines.append("Your own lines stay where you wrote them; `syncd status` lists any conflict.")
        return lines


def _outcome(change: Change, target: DemoTarget, store: StateStore) -> str:
    page = store.page(target.name, change.book_id)
    conflicted = any(
        c.highlight_id == change.highlight_id for _book, c in store.conflicts(target.name)
    )
    if page is None or not page.path:
        return "no page for this book"
    try:
        text = (target.vault / page.path).read_text(encoding="utf-8")
    except OSError as exc:
        return f"could not read {page.path}: {exc.strerror}"
    probe = _probe(change.text)
    if change.kind == "edit":
        if conflicted:
            return "you had edited this highlight too: your text was kept (see `syncd status`)"
        if probe in text:
            return "the block was replaced in place (what you added to the note stays)"
        return "not applied (see `syncd status`)"
    if change.kind == "add":
        return "added in a new section" if probe in text else "not added (see the log)"
    if probe in text:
        return "kept: you had edited it, or it is not removed (on_upstream_delete)"
    return "removed from the note"


def _probe(text: str) -> str:
    """A piece of a highlight's text that survives rendering (its first line, up to 60 chars)."""
    return text.strip().splitlines()[0][:60] if text.strip() else text


def _user_edited(vault: Path, page: PageRow) -> bool:
    """Edited since syncd wrote it, or merged with an edit of the user's before."""
    if page.user_modified:
        return True
    try:
        return (vault / page.path).read_text(encoding="utf-8") != page.written_text
    except (OSError, UnicodeDecodeError):
        return False
