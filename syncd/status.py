"""`syncd status`: what the state store knows per target and per device source (no network, no
lock: it works while the daemon runs), as a report for `--json` and as lines for a person."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from syncd.config import Config
from syncd.sources.local_pass import status_lines, stored_reports
from syncd.sync.state import PAGE_DELETED_BY_USER, PAGE_LIVE, StateStore
from syncd.wording import counted
from syncd.writeback.status import writeback_status, writeback_status_lines


def status_report(cfg: Config) -> list[dict[str, Any]]:
    """Per target: pages, highlights, pages the user deleted, conflicts, what the write-back
    sent, holds and did not send (syncd.writeback.status), the last run."""
    report: list[dict[str, Any]] = []
    with contextlib.closing(StateStore.open(cfg.state.dir)) as store:
        for target in cfg.targets:
            pages = store.pages(target.name)
            last = store.last_run(target.name)
            report.append(
                {
                    "target": target.name,
                    "vault": str(target.vault),
                    "pages": sum(1 for p in pages if p.status == PAGE_LIVE),
                    "highlights": sum(len(p.blocks) for p in pages if p.status == PAGE_LIVE),
                    "deleted_by_user": [
                        {"book_id": p.book_id, "path": p.path}
                        for p in pages
                        if p.status == PAGE_DELETED_BY_USER
                    ],
                    "conflicts": [
                        {
                            "book_id": book_id,
                            "highlight_id": c.highlight_id,
                            "yours": c.theirs,
                            "readwise": c.upstream,
                        }
                        for book_id, c in store.conflicts(target.name)
                    ],
                    "write_back": writeback_status(store, target.name),
                    "last_run": None
                    if last is None
                    else {
                        "finished_at": last.finished_at,
                        "result": last.result,
                        "summary": last.summary,
                        "error": last.error,
                    },
                }
            )
    return report


def source_report(cfg: Config) -> list[dict[str, Any]]:
    """Per device source ([[sources]]): what the last pass that read it recorded."""
    with contextlib.closing(StateStore.open(cfg.state.dir)) as store:
        return stored_reports(store, [source.name for source in cfg.sources])


def print_status(
    report: list[dict[str, Any]],
    *,
    sources: list[dict[str, Any]] | None = None,
    say: Callable[[str], None] = print,
) -> None:
    for line in status_lines(sources or []):
        say(line)
    for item in report:
        last_run = item["last_run"]
        say(
            f"{item['target']} ({item['vault']}): {counted(item['pages'], 'page')}, "
            f"{counted(item['highlights'], 'highlight')}"
        )
        if last_run is None:
            say("  no pass yet")
        else:
            say(
                f"  last pass {last_run['finished_at']}: {last_run['result']}"
                + (f" ({last_run['error']})" if last_run["error"] else "")
            )
            for error in last_run["summary"].get("errors", [])[1:]:
                say(f"    also: {error}")
        for deleted in item["deleted_by_user"]:
            say(
                f"  deleted by you, not recreated: {deleted['path']} "
                f"(restore: syncd --once --resync {deleted['book_id']})"
            )
        for conflict in item["conflicts"]:
            say(
                f"  conflict in book {conflict['book_id']}, highlight {conflict['highlight_id']}: "
                "your text was kept\n"
                f"    yours:    {conflict['yours'].strip()[:200]!r}\n"
                f"    Readwise: {conflict['readwise'].strip()[:200]!r}"
            )
        for line in writeback_status_lines(item["write_back"]):
            say(line)
