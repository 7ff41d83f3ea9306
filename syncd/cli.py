"""Command line: parses arguments, hands them to the library (`passes`, `checkup`, `daemon`,
`demo`, `rebuild`) and turns errors into exit codes.

syncd [--config PATH] [--once] [--dry-run] [--full] [-v|-q]
syncd check  [--config PATH]
syncd status [--config PATH] [--json]
syncd demo   [--vault DIR]
syncd rebuild-state [--config PATH]
syncd templates init DIR --format obsidian|logseq
syncd templates show --target NAME BOOK_ID [--config PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import structlog

from syncd import __version__
from syncd.config import Config, find_config_path, load_config
from syncd.errorout import report_failure
from syncd.errors import ConfigError, SyncdError
from syncd.log import configure_logging, get_logger, redact_text
from syncd.passes import EXIT_OK, failure_exit_code, readwise_token, run_once
from syncd.runtime import section_clock
from syncd.sync.engine import PassSummary
from syncd.sync.state import STATE_FILE, database_error
from syncd.wording import counted

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
    service = sub.add_parser("service", help="install or remove the systemd user service")
    actions = service.add_subparsers(dest="service_action", metavar="ACTION", required=True)
    install = actions.add_parser(
        "install",
        help="check the setup, store the token, write and start the systemd user units",
    )
    _common(install, suppress=True)
    install.add_argument(
        "--timer", action="store_true", help="a pass every 15 minutes instead of the daemon"
    )
    install.add_argument(
        "--dry-run", action="store_true", help="print the units and commands; change nothing"
    )
    uninstall = actions.add_parser("uninstall", help="stop the service and remove its units")
    _common(uninstall, suppress=True)
    rebuild = sub.add_parser(
        "rebuild-state",
        help="keep the state store aside and rebuild it from the vaults (no duplicates)",
    )
    _common(rebuild, suppress=True)
    templates = sub.add_parser("templates", help="your own Readwise export templates")
    _common(templates, suppress=True)
    tsub = templates.add_subparsers(dest="templates_command", metavar="ACTION", required=True)
    init = tsub.add_parser("init", help="write Readwise's default templates into DIR, to edit")
    init.add_argument("dir", metavar="DIR", help="folder to write the .j2 files into")
    init.add_argument("--format", required=True, choices=["obsidian", "logseq"])
    show = tsub.add_parser("show", help="print a book's page as the target's templates write it")
    _common(show, suppress=True)
    show.add_argument("--target", required=True, metavar="NAME", help="the target's name")
    show.add_argument("book_id", metavar="BOOK_ID", type=int, help="the book (its Readwise id)")
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
        if args.command == "templates":
            return cmd_templates(args)
        if args.command == "service":
            return cmd_service(args)
        if not args.once:
            return cmd_daemon(args)
        return cmd_once(args)
    except SyncdError as exc:
        return _failed(log, args, redact_text(str(exc)), exc.exit_code, type(exc).__name__)
    except KeyboardInterrupt:
        print("syncd: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, sqlite3.DatabaseError) and type(exc) in _STORE_FAILURES:
            # The state store failed after it opened (disk full, damaged under us): exit 7.
            error = database_error(_state_file(args), exc)
            return _failed(log, args, str(error), error.exit_code, "StateError")
        # A bug: say so plainly, with a redacted traceback.
        details = redact_text("".join(traceback.format_exception(exc)))
        report_failure(
            log,
            sys.stderr,
            event="syncd.crashed",
            line=f"syncd: internal error (please report):\n{details}",
            verbose=args.verbose,
            error=redact_text(repr(exc)),
        )
        return 1


def _failed(
    log: structlog.stdlib.BoundLogger,
    args: argparse.Namespace,
    message: str,
    exit_code: int,
    kind: str,
) -> int:
    report_failure(
        log,
        sys.stderr,
        event="syncd.failed",
        line=f"syncd: error: {message}",
        verbose=args.verbose,
        error=message,
        exit_code=exit_code,
        kind=kind,
    )
    return exit_code


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
    from syncd.sources.local_pass import LocalSources

    cfg = _load(args)
    token = readwise_token(cfg, os.environ)
    local = LocalSources.from_config(cfg)  # kept: a device source that failed exits 9
    summary = run_once(
        cfg,
        token,
        dry_run=args.dry_run,
        full=args.full,
        quiet=args.quiet,
        force=args.force,
        resync=frozenset(args.resync),
        interactive=sys.stderr.isatty(),
        local=local,
    )
    if args.dry_run:
        _print_plan(summary)
    return failure_exit_code(summary, local)


def cmd_daemon(args: argparse.Namespace) -> int:
    if args.dry_run:
        raise ConfigError(["--dry-run needs --once: the daemon writes whenever Readwise changes"])
    # The resident daemon logs every event, on a terminal too (there is no progress line).
    configure_logging(verbosity=-1 if args.quiet else args.verbose)
    from syncd.daemon import run_daemon  # watchdog is loaded only when it is needed

    return run_daemon(find_config_path(args.config, os.environ), full_first=args.full)


def _print_plan(summary: PassSummary) -> None:
    for target in summary.targets:
        for planned in target.plan:
            if planned.action == "skip" and planned.reason == "unchanged":
                continue
            detail = planned.reason
            if planned.blocks_affected:
                detail += f"; {counted(planned.blocks_affected, 'block')} affected"
            if planned.highlights_added:
                detail += f", {counted(planned.highlights_added, 'highlight')} added"
            action = "conflict" if planned.conflicts else planned.action
            where = planned.path or f'"{planned.book_title}" (book {planned.book_id})'
            print(f"{action:8} {target.name}: {where} ({detail})")
    for line in summary.writeback.dry_run_lines() if summary.writeback is not None else ():
        print(line)


def cmd_rebuild_state(args: argparse.Namespace) -> int:
    cfg = _load(args)
    token = readwise_token(cfg, os.environ)
    from syncd.rebuild import rebuild_state

    summary = rebuild_state(
        cfg.state.dir,
        lambda: run_once(cfg, token, quiet=True),
        now=datetime.now(UTC),
        say=(lambda _line: None) if args.quiet else print,
    )
    return failure_exit_code(summary)


def cmd_templates(args: argparse.Namespace) -> int:
    from syncd import template_tools

    if args.templates_command == "init":
        for written in template_tools.init_templates(Path(args.dir).expanduser(), args.format):
            print(f"wrote {written}")
        return EXIT_OK
    where, text = template_tools.show_page(
        _load(args), args.target, args.book_id, section_clock()()
    )
    print(f"--- {where}", file=sys.stderr)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from syncd.checkup import check_setup

    check_setup(_load(args), os.environ)
    return EXIT_OK


def cmd_service(args: argparse.Namespace) -> int:
    from syncd import service

    if args.service_action == "uninstall":
        service.uninstall(os.environ)
        return EXIT_OK
    from getpass import getpass

    from syncd.checkup import check_setup

    cfg = _load(args)
    service.install(
        cfg,
        os.environ,
        timer=args.timer,
        dry_run=args.dry_run,
        ask_token=(lambda: getpass("Readwise token (https://readwise.io/access_token): "))
        if sys.stdin.isatty()
        else None,
        check=lambda token: check_setup(cfg, os.environ, token=token),
    )
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from syncd.status import print_status, source_report, status_report

    cfg = _load(args)
    report, sources = status_report(cfg), source_report(cfg)
    if args.json:
        print(json.dumps({"targets": report, "sources": sources}, indent=2, ensure_ascii=False))
    else:
        print_status(report, sources=sources)
    return EXIT_OK


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
