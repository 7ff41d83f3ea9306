"""The wiring of a pass: lock the state dir, open the state store, the Readwise client and the
targets, run the engine, record what happened. One place, used by `--once`, `rebuild-state`,
`syncd demo` and the daemon, so the CLI only parses arguments and maps errors to exit codes.

    run_once(cfg, token)        lock -> store -> client -> targets -> write-back -> run_pass ->
                                run records
    readwise_token(cfg, env)    the token, or "" when no target uses Readwise (device files only)
    locked_store(state_dir)     the lock and the open store, closed whatever happens
    readwise_http(cfg)          the httpx.Client every Readwise request goes through
    readwise_source(...)        the Readwise client, or nothing to pull (device files only)
    configured_pass(...)        run_pass with the settings a config gives every pass, the
                                device sources ([[sources]]) folded in beside Readwise, the
                                user's edits sent back (runtime.make_writeback)
    failure_exit_code(summary)  what a finished pass exits with (9: a device source was bad)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from syncd.advice import log_setup_warnings
from syncd.config import Config, resolve_token
from syncd.errors import (
    ReadwiseUnavailable,
    SafetyStop,
    SyncdError,
    TemplateError,
    TokenRejected,
)
from syncd.lock import StateLock
from syncd.log import get_logger, redact_text
from syncd.progress import ProgressLine
from syncd.runs import record_error, record_pass, summary_line
from syncd.runtime import build_targets, make_client, make_writeback, section_clock
from syncd.sources.local_pass import (
    EXIT_BAD_SOURCE,
    NO_READWISE_BASE_URL,
    LocalSources,
    readwise_client,
)
from syncd.sync.engine import PassSummary, Progress, PullProgress, TargetRuntime, run_pass
from syncd.sync.pull import ExportSource, pulls_everything
from syncd.sync.state import StateStore
from syncd.writeback.push import WriteBack

EXIT_OK = 0
# Failures of single files that leave the rest of the pass standing: exit 5, not a bug.
_VAULT_ERROR_KINDS = frozenset({"VaultError", "UnsafePathError", "FileChangedError"})


@contextlib.contextmanager
def locked_store(state_dir: Path, *, verify: bool = False) -> Iterator[StateStore]:
    """The state dir locked (LockHeld, exit 6, names the holder) and its store open; both let
    go on the way out, however the pass ends."""
    with StateLock(state_dir):
        store = StateStore.open(state_dir, verify=verify)
        with contextlib.closing(store):
            yield store


def readwise_token(cfg: Config, environ: Mapping[str, str]) -> str:
    """The Readwise token; none is needed when no target uses Readwise (device files only)."""
    if not cfg.uses_readwise:
        return ""
    return resolve_token(cfg.readwise, environ, environ.get("CREDENTIALS_DIRECTORY"))


def readwise_http(cfg: Config, *, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """The HTTP client for Readwise (tests pass a transport; nothing else changes)."""
    return httpx.Client(timeout=cfg.readwise.timeout, transport=transport)


def readwise_source(
    http: httpx.Client, cfg: Config, token: str, *, interactive: bool = False
) -> ExportSource:
    """The Readwise client, or a source with nothing to pull when no target uses Readwise
    (then there is no token to make a client with)."""
    source, _base_url = readwise_client(
        cfg, lambda: make_client(http, cfg, token, interactive=interactive)
    )
    return source


def configured_pass(
    store: StateStore,
    source: ExportSource,
    targets: list[TargetRuntime],
    cfg: Config,
    *,
    dry_run: bool = False,
    full: bool = False,
    progress: Progress | None = None,
    pull_progress: PullProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
    force: bool = False,
    resync: frozenset[int] = frozenset(),
    local: LocalSources | None = None,
    writeback: WriteBack | None = None,
    readwise: bool = True,
) -> PassSummary:
    """`run_pass` with what every pass takes from the config (base URL, overlap, clock).
    `local`: the device sources to fold in beside what `source` (readwise_source) pulls;
    `writeback`: the step that sends the user's edits to Readwise (runtime.make_writeback).
    If Readwise cannot be reached or refuses the token, the device sources are still synced
    (see devices_alone_possible) and the summary carries the failure (readwise_failure).
    `readwise=False`: only that, without asking Readwise (the daemon, when a device saves while
    Readwise is in back-off); the caller checks devices_alone_possible first."""
    # With no target using Readwise, the pass records a base URL no account has: adding
    # [readwise] later makes the first Readwise pull a full one.
    base_url = cfg.readwise.base_url if cfg.uses_readwise else NO_READWISE_BASE_URL

    def run(*, readwise: bool) -> PassSummary:
        return run_pass(
            store,
            source,
            targets,
            base_url=base_url,
            overlap=timedelta(seconds=cfg.readwise.overlap_seconds),
            now=section_clock(),
            dry_run=dry_run,
            full=full,
            progress=progress,
            pull_progress=pull_progress,
            should_stop=should_stop,
            force=force,
            resync=resync,
            fold_local=local.fold if local is not None else None,
            writeback=writeback,
            readwise=readwise,
        )

    if not readwise:
        return run(readwise=False)
    try:
        return run(readwise=True)
    except (ReadwiseUnavailable, TokenRejected) as failure:
        if dry_run or not devices_alone_possible(store, cfg, local):
            raise
        get_logger("syncd.passes").warning(
            "pass.devices_only",
            reason=redact_text(str(failure)),
            message="Readwise cannot be reached: the device sources are synced without it",
        )
        return replace(run(readwise=False), readwise_failure=failure)


def devices_alone_possible(store: StateStore, cfg: Config, local: LocalSources | None) -> bool:
    """Whether a pass may sync the device sources without Readwise: a Kindle plugged in while
    Readwise is away (or the token was revoked) still gets its highlights into the vault. Only
    once Readwise has been pulled at least once, so a device book is matched with its Readwise
    copy from the start."""
    if local is None or not local.sources or not cfg.uses_readwise:
        return False
    return not pulls_everything(store, base_url=cfg.readwise.base_url)


def run_once(
    cfg: Config,
    token: str,
    *,
    dry_run: bool = False,
    full: bool = False,
    quiet: bool = False,
    force: bool = False,
    resync: frozenset[int] = frozenset(),
    transport: httpx.BaseTransport | None = None,
    say: Callable[[str], None] = print,
    interactive: bool = False,
    local: LocalSources | None = None,
) -> PassSummary:
    """One pass over every enabled target of a loaded config; `say` gets the summary line
    unless `quiet`. `interactive`: someone is waiting, so an unreachable Readwise is said
    within ~10 s. `local`: the device sources (default: the config's); the caller keeps it to
    see their reports (failure_exit_code)."""
    log = get_logger("syncd.passes")
    local = local if local is not None else LocalSources.from_config(cfg)
    with locked_store(cfg.state.dir) as store:
        log_setup_warnings(cfg, new_targets=lambda name: store.count_live_pages(name) == 0)
        progress = ProgressLine()
        started_at = datetime.now(UTC).isoformat()
        try:
            with readwise_http(cfg, transport=transport) as http:
                summary = configured_pass(
                    store,
                    readwise_source(http, cfg, token, interactive=interactive),
                    build_targets(cfg),
                    cfg,
                    dry_run=dry_run,
                    full=full,
                    progress=progress.target if not dry_run else None,
                    pull_progress=progress.pulled,
                    force=force,
                    resync=resync,
                    local=local,
                    writeback=make_writeback(http, cfg, token),
                )
        except SyncdError as exc:
            if not dry_run:
                record_failure(store, (t.name for t in cfg.targets), started_at, exc)
            raise
        finally:
            progress.done()
        if not dry_run:
            record_pass(store, summary, started_at)
            if summary.readwise_failure is not None:
                record_failure(
                    store, (t.name for t in cfg.targets), started_at, summary.readwise_failure
                )
    log.info(
        "pass.summary",
        targets=[t.as_dict() for t in summary.targets],
        elapsed_s=round(summary.elapsed, 3),
        dry_run=dry_run,
        writeback=summary.writeback.as_dict() if summary.writeback is not None else None,
    )
    if not quiet:
        say(summary_line(summary, dry_run=dry_run))
    if summary.readwise_failure is not None:
        raise summary.readwise_failure  # the device sources were synced; Readwise was not
    return summary


def record_failure(
    store: StateStore, targets: Iterable[str], started_at: str, exc: SyncdError
) -> None:
    """The pass as a whole failed: one error record per target, for `syncd status`."""
    # If the state store itself is the problem, the original error says more than this would.
    with contextlib.suppress(SyncdError):
        record_error(store, targets, started_at, redact_text(str(exc)))


def failure_exit_code(summary: PassSummary, local: LocalSources | None = None) -> int:
    """0 when every file went through; 8 when a target paused for safety; 5 when only vault
    files failed (unreadable, not UTF-8, unwritable: each logged with its book and path); 2
    when only a user's template failed on some books (each logged with its file and line); 1
    when something else did (a bug); otherwise 9 when a device source could not be read (the
    rest of the pass was done)."""
    kinds = {kind for target in summary.targets for kind, _message in target.errors}
    if not kinds:
        return EXIT_BAD_SOURCE if local is not None and local.failed else EXIT_OK
    if "SafetyStop" in kinds:
        return SafetyStop.exit_code
    if kinds <= _VAULT_ERROR_KINDS:
        return 5
    return TemplateError.exit_code if kinds <= {"TemplateProblem"} else 1
