"""Device sources in a pass: read each configured file or folder, fold it into the cache.

`LocalSources.fold(store)` runs inside the pass's pull transaction, right after the Readwise
pull (see syncd.sync.engine.run_pass), so the targets render device highlights exactly like
Readwise's. Per source it records a status (ok, missing, busy, error) in the state store, which
`syncd status` shows. A source that cannot be read is skipped: nothing from it is written and
nothing it added before is removed, and every other source and target goes on.

- missing (a Kindle not plugged in, a folder not mounted): skipped quietly; never "all deleted".
- busy: the file kept changing while it was read (a device writing, or unplugged mid-read);
  the next pass tries again. Nothing torn is ever folded.
- error: not a clippings file, binary data, too big, a sidecar with code: logged with the path
  and the reason; `syncd --once` exits 9 after the rest of the pass is done.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncd.config import READWISE_SOURCE, Config, SourceConfig
from syncd.log import get_logger
from syncd.sources.device_files import (
    CLIPPINGS_MAX_BYTES,
    SIDECAR_MAX_BYTES,
    Unsettled,
    decode,
    find_sidecars,
    read_settled,
)
from syncd.sources.kindle_clippings import parse_clippings
from syncd.sources.koreader import parse_sidecar
from syncd.sources.local import LocalBook, LocalSourceError
from syncd.sources.local_merge import cache_index, fold_source
from syncd.sync.pull import ExportPageLike, ExportSource
from syncd.sync.state import StateStore

log = get_logger("syncd.sources")

STATUS_KEY = "local_source:"  # + source name, in the state store's key/value table
FOLDED_KEY = "local_folded:"  # + source name: book id -> [fingerprint, rev] of the last fold
# The base_url a pass records when no target uses Readwise: no account has it, so adding
# [readwise] later makes the first Readwise pull a full one.
NO_READWISE_BASE_URL = "syncd:no-readwise"
EXIT_BAD_SOURCE = LocalSourceError.exit_code


def readwise_client(
    cfg: Config, make_client: Callable[[], ExportSource]
) -> tuple[ExportSource, str]:
    """(source, base_url) for run_pass: the Readwise client, or nothing to pull when no target
    uses Readwise (then there is no token to make a client with)."""
    if cfg.uses_readwise:
        return make_client(), cfg.readwise.base_url
    return NoReadwise(), NO_READWISE_BASE_URL


class NoReadwise:
    """The export source of a config whose targets use only device files: nothing to pull."""

    def check_token(self) -> None:
        return None

    def export_pages(
        self,
        *,
        updated_after: datetime | None,
        include_deleted: bool = True,
        ids: Sequence[int] | None = None,
    ) -> Iterator[ExportPageLike]:
        return iter(())


@dataclass(slots=True)
class SourceReport:
    name: str
    kind: str
    path: str
    status: str  # "ok", "missing", "busy", "error"
    message: str = ""
    books: int = 0
    highlights: int = 0
    books_changed: int = 0
    checked_at: str = ""


@dataclass(slots=True)
class _Parsed:
    """The last parse of one file, reused while its bytes are the same."""

    digest: bytes
    books: tuple[LocalBook, ...]


@dataclass
class LocalSources:
    sources: Sequence[SourceConfig]
    pause: Callable[[], None] | None = None  # between reads that disagree (tests: no sleep)
    reports: list[SourceReport] = field(default_factory=list)
    _parsed: dict[Path, _Parsed] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Config) -> LocalSources:
        """The sources some enabled target uses."""
        every = {source.name for source in cfg.sources}
        used: set[str] = set()
        for target in cfg.targets:
            if target.enabled:
                used |= target.sources if target.sources is not None else every
        return cls([s for s in cfg.sources if s.name in used and s.name != READWISE_SOURCE])

    @property
    def failed(self) -> bool:
        return any(report.status == "error" for report in self.reports)

    @property
    def paths(self) -> list[Path]:
        return [source.path for source in self.sources]

    def fold(self, store: StateStore) -> None:
        """Read every source and fold what was read into the cache (caller's transaction)."""
        self.reports = []
        if not self.sources:
            return
        index = cache_index(store)
        rev = store.next_rev()
        for source in self.sources:
            report = SourceReport(source.name, source.kind, str(source.path), "ok")
            report.checked_at = datetime.now(UTC).isoformat(timespec="seconds")
            try:
                books, problems = self._read(source)
            except Unsettled as busy:
                report.status, report.message = "busy", str(busy)
                log.warning("source.busy", source=source.name, path=str(source.path))
            except LocalSourceError as error:
                report.status, report.message = "error", str(error)
                log.error("source.failed", source=source.name, error=str(error))
            except OSError as error:  # the folder itself failing (a device going away)
                report.status, report.message = "busy", f"{source.path}: {error.strerror}"
                log.warning("source.busy", source=source.name, error=report.message)
            except Exception as error:  # a bug: this source is skipped, the pass goes on
                report.status, report.message = "error", f"{source.path}: internal error: {error!r}"
                log.error("source.crashed", source=source.name, error=repr(error), exc_info=True)
            else:
                if books is None:
                    report.status = "missing"
                    report.message = f"{source.path} is not there (device not plugged in?)"
                    log.info("source.missing", source=source.name, path=str(source.path))
                else:
                    raw = store.get_source(FOLDED_KEY + source.name)
                    before: dict[str, list[Any]] = json.loads(raw) if raw else {}
                    folded = fold_source(
                        store,
                        books,
                        source_name=source.name,
                        kind=source.kind,
                        rev=rev,
                        index=index,
                        folded=before,
                    )
                    store.set_source(FOLDED_KEY + source.name, json.dumps(before))
                    report.books, report.highlights = folded.books, folded.highlights
                    report.books_changed = folded.books_changed
                    if problems:
                        report.status, report.message = "error", "; ".join(problems)
                    log.info(
                        "source.read",
                        source=source.name,
                        books=folded.books,
                        highlights=folded.highlights,
                        books_changed=folded.books_changed,
                    )
            self.reports.append(report)
            store.set_source(STATUS_KEY + source.name, json.dumps(asdict(report)))

    def _settled(self, path: Path, max_bytes: int) -> Any:
        if self.pause is None:
            return read_settled(path, max_bytes=max_bytes)
        return read_settled(path, max_bytes=max_bytes, pause=self.pause)

    def _read(self, source: SourceConfig) -> tuple[list[LocalBook] | None, list[str]]:
        """(books, problems with single files); books None when the path is not there."""
        if source.kind == "kindle_clippings":
            snapshot = self._settled(source.path, CLIPPINGS_MAX_BYTES)
            if snapshot is None:
                return None, []
            return list(self._parse(source.path, snapshot, _parse_clippings)), []
        if not source.path.exists():
            return None, []
        books: list[LocalBook] = []
        problems: list[str] = []
        for sidecar in find_sidecars(source.path):
            try:
                snapshot = self._settled(sidecar, SIDECAR_MAX_BYTES)
                if snapshot is not None:
                    books.extend(self._parse(sidecar, snapshot, _parse_sidecar))
            except LocalSourceError as error:  # this book is skipped, the others go on
                log.error("source.file_failed", source=source.name, error=str(error))
                problems.append(str(error))
        return books, problems

    def _parse(
        self, path: Path, snapshot: Any, parse: Callable[[str, Path], tuple[LocalBook, ...]]
    ) -> tuple[LocalBook, ...]:
        cached = self._parsed.get(path)
        if cached is not None and cached.digest == snapshot.digest:
            return cached.books
        books = parse(decode(snapshot, path), path)
        self._parsed[path] = _Parsed(snapshot.digest, books)
        return books


def _parse_clippings(text: str, path: Path) -> tuple[LocalBook, ...]:
    return parse_clippings(text, where=str(path)).books


def _parse_sidecar(text: str, path: Path) -> tuple[LocalBook, ...]:
    return (parse_sidecar(text, where=str(path)),)


def check_lines(cfg: Config) -> list[str]:
    """`syncd check`: each source's path, and whether it is there now (a device may not be)."""
    lines = []
    for source in cfg.sources:
        there = source.path.exists()
        state = "found" if there else "not there now (fine if the device is not plugged in)"
        lines.append(f"source {source.name} ({source.kind}): {source.path} {state}")
    return lines


def stored_reports(store: StateStore, names: Sequence[str]) -> list[dict[str, Any]]:
    """What the last pass recorded for each source (for `syncd status`)."""
    reports = []
    for name in names:
        raw = store.get_source(STATUS_KEY + name)
        reports.append(json.loads(raw) if raw else {"name": name, "status": "not read yet"})
    return reports


def status_lines(reports: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for report in reports:
        line = f"source {report['name']}: {report['status']}"
        if report["status"] in ("ok", "error") and "books" in report:
            line += f", {report['books']} books, {report['highlights']} highlights"
        if report.get("checked_at"):
            line += f" (read {report['checked_at']})"
        lines.append(line)
        if report.get("message"):
            lines.append(f"  {report['message']}")
    return lines
