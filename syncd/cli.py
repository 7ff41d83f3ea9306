"""Command line: the only place that turns config into objects and errors into exit codes.

syncd [--config PATH] [--once] [--dry-run] [--full] [-v|-q]
syncd check  [--config PATH]
syncd status [--config PATH] [--json]
syncd demo   [--vault DIR]
syncd rebuild-state [--config PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from syncd import __version__
from syncd.config import Config, find_config_path, load_config, resolve_token
from syncd.errors import ConfigError, SafetyStop, SyncdError
from syncd.lock import StateLock
from syncd.log import configure_logging, get_logger, redact_text
from syncd.progress import ProgressLine
from syncd.runs import record_error, record_pass, summary_line
from syncd.runtime import build_targets, make_client, make_writeback, section_clock
from syncd.sync.engine import PassSummary, run_pass
from syncd.sync.state import (
    PAGE_DELETED_BY_USER,
    PAGE_LIVE,
    STATE_FILE,
    StateStore,
    database_error,
)
from syncd.writeback.status import writeback_status, writeback_status_lines

EXIT_OK = 0
# What SQLite raises when the file or its disk fails (ProgrammingError, IntegrityError and the
# like mean a bug in syncd and stay internal errors).
_STORE_FAILURES = (sqlite3.DatabaseError, sqlite3.OperationalError, sqlite3.InternalError)


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: $SYNCD_CONFIG, else the user config dir)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="more log output (-vv for debug)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="only warnings and errors",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Keep Obsidian vaults and Logseq graphs in sync with your Readwise highlights.",
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    _common(parser, suppress=False)
    parser.add_argument("--once", action="store_true", help="run one pass, then exit")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be created or changed; write nothing",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="apply a pass even if it removes highlights from more than 20%% of a target's pages",
    )
    parser.add_argument(
        "--resync",
        metavar="BOOK_ID",
        type=int,
        action="append",
        default=[],
        help="restore the page of a book whose file you deleted (repeatable)",
    )
    parser.add_argument(
        "--full", action="store_true", help="ignore the watermark: pull the whole library this pass"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = sub.add_parser("check", help="validate config, token and vault paths")
    _common(check, suppress=True)
    status = sub.add_parser("status", help="what the last passes did (no network)")
    _common(status, suppress=True)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    demo = sub.add_parser("demo", help="a full pass from a built-in offline sample library")
    _common(demo, suppress=True)
    demo.add_argument(
        "--vault",
        metavar="DIR",
        default="syncd-demo",
        help="folder for the demo vault, graph and state (default ./syncd-demo)",
    )
    rebuild = sub.add_parser(
        "rebuild-state",
        help="keep the state store aside and rebuild it from the vaults (no duplicates)",
    )
    _common(rebuild, suppress=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help / --version exit 0, usage errors exit 2
        return int(exc.code or 0)
    verbosity = -1 if args.quiet else args.verbose
    if verbosity == 0 and sys.stderr.isatty():
        verbosity = -1  # on a terminal the progress line and summary say it; -v shows events
    configure_logging(verbosity=verbosity)
    log = get_logger("syncd.cli")
    try:
        if args.command == "check":
            return cmd_check(args)
        if args.command == "status":
            return cmd_status(args)
        if args.command == "demo":
            from syncd.demo import run_demo

            return run_demo(Path(args.vault), quiet=args.quiet)
        if args.command == "rebuild-state":
            return cmd_rebuild_state(args)
        if not args.once:
            return cmd_daemon(args)
        return cmd_once(args)
    except SyncdError as exc:
        message = redact_text(str(exc))
        log.error("syncd.failed", error=message, exit_code=exc.exit_code, kind=type(exc).__name__)
        print(f"syncd: error: {message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("syncd: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, sqlite3.DatabaseError) and type(exc) in _STORE_FAILURES:
            # The state store failed after it opened (disk full, damaged under us): exit 7.
            error = database_error(_state_file(args), exc)
            log.error(
                "syncd.failed", error=str(error), exit_code=error.exit_code, kind="StateError"
            )
            print(f"syncd: error: {error}", file=sys.stderr)
            return error.exit_code
        # A bug: say so plainly, with a redacted traceback.
        details = redact_text("".join(traceback.format_exception(exc)))
        log.error("syncd.crashed", error=redact_text(repr(exc)))
        print(f"syncd: internal error (please report):\n{details}", file=sys.stderr)
        return 1


def _state_file(args: argparse.Namespace) -> Path:
    """The state store's path for an error message (the config loaded fine before the error)."""
    if args.command == "demo":
        return Path(args.vault) / "state" / STATE_FILE
    try:
        return _load(args).state.dir / STATE_FILE
    except SyncdError:
        return Path(STATE_FILE)


def _load(args: argparse.Namespace) -> Config:
    path = find_config_path(getattr(args, "config", None), os.environ)
    # Vault folders are checked per pass (exit 5: maybe an unmounted drive), not as config (2).
    return load_config(path, environ=os.environ, check_vaults=False)


def cmd_once(args: argparse.Namespace) -> int:
    cfg = _load(args)
    token = resolve_token(cfg.readwise, os.environ, os.environ.get("CREDENTIALS_DIRECTORY"))
    summary = run_once(
        cfg,
        token,
        dry_run=args.dry_run,
        full=args.full,
        quiet=args.quiet,
        force=args.force,
        resync=frozenset(args.resync),
    )
    if args.dry_run:
        _print_plan(summary)
    return failure_exit_code(summary)


def cmd_daemon(args: argparse.Namespace) -> int:
    if args.dry_run:
        raise ConfigError(["--dry-run needs --once: the daemon writes whenever Readwise changes"])
    # The resident daemon logs every event, on a terminal too (there is no progress line).
    configure_logging(verbosity=-1 if args.quiet else args.verbose)
    from syncd.daemon import run_daemon  # watchdog is loaded only when it is needed

    return run_daemon(find_config_path(args.config, os.environ), full_first=args.full)


def run_once(
    cfg: Config,
    token: str,
    *,
    dry_run: bool = False,
    full: bool = False,
    quiet: bool = False,
    force: bool = False,
    resync: frozenset[int] = frozenset(),
) -> PassSummary:
    """One pass over every enabled target of a loaded config (used by --once and the demo)."""
    log = get_logger("syncd.cli")
    with StateLock(cfg.state.dir), contextlib.closing(StateStore.open(cfg.state.dir)) as store:
        # closing(): a pass that fails (any exception) must not leave the database open.
        progress = ProgressLine()
        started_at = datetime.now(UTC).isoformat()
        try:
            with httpx.Client(timeout=cfg.readwise.timeout) as http:
                client = make_client(http, cfg, token)
                targets = build_targets(cfg)
                writeback = make_writeback(http, cfg, token)
                summary = run_pass(
                    store,
                    client,
                    targets,
                    base_url=cfg.readwise.base_url,
                    overlap=timedelta(seconds=cfg.readwise.overlap_seconds),
                    now=section_clock(),
                    dry_run=dry_run,
                    full=full,
                    progress=progress.target if not dry_run else None,
                    pull_progress=progress.pulled,
                    force=force,
                    resync=resync,
                    writeback=writeback,
                )
        except SyncdError as exc:
            if not dry_run:
                _record_failure(store, cfg, started_at, exc)
            raise
        finally:
            progress.done()
        if not dry_run:
            record_pass(store, summary, started_at)
    line = summary_line(summary, dry_run=dry_run)
    log.info(
        "pass.summary",
        targets=[t.as_dict() for t in summary.targets],
        elapsed_s=round(summary.elapsed, 3),
        dry_run=dry_run,
        writeback=summary.writeback.as_dict() if summary.writeback is not None else None,
    )
    if not quiet:
        print(line)
    return summary


def failure_exit_code(summary: PassSummary) -> int:
    """0 when every file went through; 8 when a target paused for safety; 5 when only vault
    files failed (unreadable, not UTF-8,
    unwritable: each logged with its book and path); 1 when something else did (a bug)."""
    kinds = {kind for target in summary.targets for kind, _message in target.errors}
    if not kinds:
        return EXIT_OK
    if "SafetyStop" in kinds:
        return SafetyStop.exit_code
    vault_kinds = {"VaultError", "UnsafePathError", "FileChangedError"}
    return 5 if kinds <= vault_kinds else 1


def _print_plan(summary: PassSummary) -> None:
    for target in summary.targets:
        for planned in target.plan:
            if planned.action == "skip" and planned.reason == "unchanged":
                continue
            detail = planned.reason
            if planned.blocks_affected:
                detail += f"; {planned.blocks_affected} blocks affected"
            if planned.highlights_added:
                detail += f", {planned.highlights_added} highlights added"
            action = "conflict" if planned.conflicts else planned.action
            print(f"{action:8} {target.name}: {planned.path or '-'} ({detail})")
    for line in summary.writeback.dry_run_lines() if summary.writeback is not None else ():
        print(line)


def _record_failure(store: StateStore, cfg: Config, started_at: str, exc: SyncdError) -> None:
    # If the state store itself is the problem, the original error says more than this would.
    with contextlib.suppress(SyncdError):
        record_error(store, (t.name for t in cfg.targets), started_at, redact_text(str(exc)))


def cmd_rebuild_state(args: argparse.Namespace) -> int:
    cfg = _load(args)
    token = resolve_token(cfg.readwise, os.environ, os.environ.get("CREDENTIALS_DIRECTORY"))
    from syncd.rebuild import rebuild_state

    summary = rebuild_state(
        cfg.state.dir,
        lambda: run_once(cfg, token, quiet=True),
        now=datetime.now(UTC),
        say=(lambda _line: None) if args.quiet else print,
    )
    return failure_exit_code(summary)


def cmd_check(args: argparse.Namespace) -> int:
    cfg = _load(args)
    print(f"config: {cfg.path} ok ({len(cfg.targets)} targets)")
    token = resolve_token(cfg.readwise, os.environ, os.environ.get("CREDENTIALS_DIRECTORY"))
    from syncd.sync.engine import check_vault_root

    store = StateStore.open(cfg.state.dir, verify=True)
    try:
        for runtime in build_targets(cfg):
            check_vault_root(runtime, store)
            print(f"target {runtime.policy.name}: vault {runtime.policy.vault} ok")
    finally:
        store.close()
    print(f"state: {cfg.state.dir} ok")
    with httpx.Client(timeout=cfg.readwise.timeout) as http:
        make_client(http, cfg, token).check_token()
    print(f"token: accepted by {cfg.readwise.base_url}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _load(args)
    store = StateStore.open(cfg.state.dir)
    report: list[dict[str, Any]] = []
    try:
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
    finally:
        store.close()
    if args.json:
        print(json.dumps({"targets": report}, indent=2, ensure_ascii=False))
        return EXIT_OK
    for item in report:
        last_run = item["last_run"]
        print(
            f"{item['target']} ({item['vault']}): {item['pages']} pages, "
            f"{item['highlights']} highlights"
        )
        if last_run is None:
            print("  no pass yet")
        else:
            print(
                f"  last pass {last_run['finished_at']}: {last_run['result']}"
                + (f" ({last_run['error']})" if last_run["error"] else "")
            )
        for deleted in item["deleted_by_user"]:
            print(
                f"  deleted by you, not recreated: {deleted['path']} "
                f"(restore: syncd --once --resync {deleted['book_id']})"
            )
        for conflict in item["conflicts"]:
            print(
                f"  conflict in book {conflict['book_id']}, highlight {conflict['highlight_id']}: "
                "your text was kept\n"
                f"    yours:    {conflict['yours'].strip()[:200]!r}\n"
                f"    Readwise: {conflict['readwise'].strip()[:200]!r}"
            )
        for line in writeback_status_lines(item["write_back"]):
            print(line)
    return EXIT_OK


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
