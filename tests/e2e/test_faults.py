"""Upstream faults, end to end: the stand-in misbehaves during a pass and nothing is lost.

For every fault case and seed (the script is in tests/e2e/faults_support.py): the pass under test
either completes with every vault file byte for byte what a fault-free run gives, or stops with
the documented exit code (3 token rejected, 4 Readwise unavailable or unreadable) leaving every
vault file and every state row as they were; a fault-free pass after it then reaches the
fault-free result, and the census finds each highlight exactly once. Passes run in-process over
real HTTP with `sleep` injected, so the waits the client asks for are asserted, never slept. One
`syncd --once` subprocess per fault family checks the CLI's exit codes and that the token never
shows in its output or its state.

SYNCD_LONG=1 runs every case over ten seeds instead of three.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from syncd.errors import ReadwiseUnavailable
from syncd.standin import Fault, FaultPlan, Library
from syncd.standin.faults import RETRYABLE_FAULTS
from tests.e2e.conftest import ROOT
from tests.e2e.faults_support import (
    RETRY,
    TOKEN,
    Files,
    PassOutcome,
    Reference,
    Script,
    Tables,
    UpstreamEdits,
    Workspace,
    census,
    change_between_pages,
    changed_files,
    dump_tables,
    open_workspace,
    prepare,
    reference_run,
)

SEEDS = range(1, 11) if os.environ.get("SYNCD_LONG") == "1" else range(1, 4)
AUTH_PATH = "/api/v2/auth/"
EXPORT_PATH = "/api/v2/export/"
SLOW = 5.0  # seconds a delayed reply waits: ten times the client's timeout


# --- what a case expects of the waits -----------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """One retry's wait: `seconds` exactly, or about them (from an HTTP date), or else the backoff
    after the `attempt`-th failure of a request."""

    seconds: float | None = None
    approx: bool = False
    attempt: int = 0

    def allows(self, asked: float) -> bool:
        if self.seconds is not None:
            return abs(asked - self.seconds) <= (1.5 if self.approx else 0.0)
        step = min(RETRY.backoff_max, RETRY.backoff_initial * 2.0 ** (self.attempt - 1))
        return step / 2 <= asked <= step


@dataclass
class Armed:
    """A fault plan for the pass under test and the waits it must cause, in order (None: not
    predictable, only their number is checked)."""

    plan: FaultPlan
    waits: list[Wait] | None = None


@dataclass(frozen=True)
class Scenario:
    seed: int
    rng: random.Random
    pages: int  # export pages of the fault-free pass under test
    library: Library
    edits: UpstreamEdits | None


Expect = Literal["complete", "either"] | int


@dataclass(frozen=True)
class FaultCase:
    name: str
    arm: Callable[[Scenario], Armed]
    expect: Expect
    scripts: tuple[Script, ...] = ("incremental",)
    retried: bool = True  # every fault is answered with one retry, so one wait


# --- fault builders --------------------------------------------------------------------------


def _wait_for(fault: Fault, attempt: int) -> Wait:
    if fault.kind == "throttle" and fault.retry_after_date_seconds is not None:
        return Wait(fault.retry_after_date_seconds, approx=True)
    if fault.kind == "throttle" and fault.retry_after is not None and fault.retry_after.isdigit():
        return Wait(min(float(fault.retry_after), RETRY.max_retry_after))
    return Wait(attempt=attempt)


def _storm(
    s: Scenario, make: Callable[[random.Random], Fault], *, rate: float = 0.5, limit: int = 12
) -> Armed:
    """Faults a client survives: on any export request, never on every attempt at one page, at
    least one and at most `limit`. The waits follow from each fault and its attempt number."""
    while True:
        faults: dict[int, Fault] = {}
        waits: list[Wait] = []
        request = 0
        for _page in range(s.pages):
            for attempt in range(1, RETRY.max_attempts):
                request += 1
                if len(faults) >= limit or s.rng.random() >= rate:
                    break
                faults[request] = make(s.rng)
                waits.append(_wait_for(faults[request], attempt))
            else:
                request += 1  # the last attempt goes through
        if faults:
            return Armed(FaultPlan.on_export_requests(faults), waits)


def _exhausted(make: Callable[[random.Random], Fault]) -> Callable[[Scenario], Armed]:
    """Every attempt at one page fails: the pass must give up."""

    def arm(s: Scenario) -> Armed:
        page = s.rng.randint(1, s.pages)  # no fault before it: page n is export request n
        faults = {page + n: make(s.rng) for n in range(RETRY.max_attempts)}
        waits = [_wait_for(faults[page + n], n + 1) for n in range(RETRY.max_attempts - 1)]
        return Armed(FaultPlan.on_export_requests(faults), waits)

    return arm


def _storm_of(
    make: Callable[[random.Random], Fault], *, rate: float = 0.5, limit: int = 12
) -> Callable[[Scenario], Armed]:
    return lambda s: _storm(s, make, rate=rate, limit=limit)


def _throttle_storm(s: Scenario) -> Armed:
    # The token check is throttled first with the longest wait: a 60 s wait must be asked for.
    armed = _storm(s, lambda rng: Fault.throttle(retry_after=rng.randint(0, 60)))
    armed.plan.add_path_fault(AUTH_PATH, Fault.throttle(retry_after=60))
    armed.waits = [Wait(60.0), *(armed.waits or [])]
    return armed


# Missing, empty, negative, infinite or unreadable: each falls back to backoff.
_UNUSABLE_RETRY_AFTER = (None, "soon", "", "-3", "inf", "nan", "Thu, 99 Foo 2024 25:00:00 GMT")


def _throttle_unusable_retry_after(s: Scenario) -> Armed:
    return _storm(s, lambda rng: Fault.throttle(retry_after=rng.choice(_UNUSABLE_RETRY_AFTER)))


def _throttle_http_date(s: Scenario) -> Armed:
    armed = _storm(s, lambda rng: Fault.throttle_until(rng.choice((5, 30, 60))))
    armed.plan.add_path_fault(AUTH_PATH, Fault.throttle_until(60))
    armed.waits = [Wait(60.0, approx=True), *(armed.waits or [])]
    return armed


def _any_5xx(rng: random.Random) -> Fault:
    return Fault.status(rng.choice((500, 502, 503, 504)))


def _token_check_unavailable(s: Scenario) -> Armed:
    plan = FaultPlan().add_path_fault(AUTH_PATH, _any_5xx(s.rng), times=RETRY.max_attempts)
    return Armed(plan, [Wait(attempt=n) for n in range(1, RETRY.max_attempts)])


def _slow(_rng: random.Random) -> Fault:
    return Fault.delay(SLOW)


def _reset(rng: random.Random) -> Fault:
    return Fault.reset(rng.uniform(0.0, 0.95))


def _truncate(rng: random.Random) -> Fault:
    return Fault.truncate(rng.uniform(0.0, 0.95))


def _cut(rng: random.Random) -> Fault:
    return _reset(rng) if rng.random() < 0.5 else _truncate(rng)


def _captive(_rng: random.Random) -> Fault:
    return Fault.captive_portal()


def _at_later_page(fault: Fault) -> Callable[[Scenario], Armed]:
    """`fault` on one page after the first (a page a cursor leads to)."""
    return lambda s: Armed(FaultPlan.on_export_requests({s.rng.randint(2, s.pages): fault}))


def _revoked(s: Scenario) -> Armed:
    # Request 1 is the token check, the export pages follow. A rejected token is never retried.
    return Armed(FaultPlan().revoke_token_from(s.rng.randint(1, s.pages + 1)), [])


def _library_changes(s: Scenario) -> Armed:
    assert s.edits is not None
    edits = s.edits
    change = Fault.run(lambda: change_between_pages(s.library, s.seed, edits))
    return Armed(FaultPlan.on_export_requests({s.rng.randint(2, s.pages): change}), [])


def _random_mix(s: Scenario) -> Armed:
    # Export requests only: cutting the token check's bodiless 204 short is no fault at all.
    faults = (*RETRYABLE_FAULTS, Fault.delay(SLOW), Fault.throttle(retry_after=60))
    return Armed(FaultPlan.seeded(s.seed, probability=0.3, faults=faults))


BOTH: tuple[Script, ...] = ("incremental", "first")

CASES = [
    FaultCase("429-retry-after", _throttle_storm, "complete", BOTH),
    FaultCase("429-unusable-retry-after", _throttle_unusable_retry_after, "complete"),
    FaultCase("429-http-date", _throttle_http_date, "complete"),
    # An hour is more than a pass should wait: capped at RetryPolicy.max_retry_after.
    FaultCase("429-above-cap", _exhausted(lambda _r: Fault.throttle(retry_after=3600)), 4),
    FaultCase("429-exhausted", _exhausted(lambda _r: Fault.throttle(retry_after=60)), 4),
    FaultCase("500", _storm_of(lambda _r: Fault.status(500)), "complete"),
    FaultCase("502", _storm_of(lambda _r: Fault.status(502)), "complete"),
    FaultCase("503", _storm_of(lambda _r: Fault.status(503)), "complete", BOTH),
    FaultCase("504", _storm_of(lambda _r: Fault.status(504)), "complete"),
    FaultCase("5xx-exhausted", _exhausted(_any_5xx), 4, BOTH),
    FaultCase("5xx-token-check", _token_check_unavailable, 4),
    FaultCase("slow-reply", _storm_of(_slow, rate=0.3, limit=2), "complete"),
    FaultCase("slow-reply-exhausted", _exhausted(_slow), 4),
    FaultCase("reset-mid-body", _storm_of(_reset), "complete", BOTH),
    FaultCase("truncated-body", _storm_of(_truncate), "complete"),
    FaultCase("cut-exhausted", _exhausted(_cut), 4),
    FaultCase("captive-portal", _storm_of(_captive), "complete"),
    FaultCase("captive-portal-exhausted", _exhausted(_captive), 4, BOTH),
    FaultCase("empty-page", _at_later_page(Fault.empty_page()), "either", BOTH, retried=False),
    FaultCase(
        "repeat-cursor", _at_later_page(Fault.repeat_cursor()), "either", BOTH, retried=False
    ),
    FaultCase("token-revoked", _revoked, 3, BOTH, retried=False),
    FaultCase("library-changes", _library_changes, "complete", ("changing",), retried=False),
    FaultCase("random-mix", _random_mix, "either", BOTH),
]
MATRIX = [(case, script) for case in CASES for script in case.scripts]


# --- the tally, printed at the end of the module ----------------------------------------------


@dataclass
class Tally:
    cases: int = 0
    faults: int = 0
    completed: int = 0
    stopped: dict[int, int] = field(default_factory=dict)  # exit code -> passes
    counted: int = 0  # highlight x target counts the census made

    def add(self, outcome: PassOutcome, counted: int) -> None:
        self.cases += 1
        self.faults += len(outcome.fired)
        self.counted += counted
        if outcome.exit_code:
            self.stopped[outcome.exit_code] = self.stopped.get(outcome.exit_code, 0) + 1
        else:
            self.completed += 1

    def line(self) -> str:
        stopped = ", ".join(f"exit {code}: {n}" for code, n in sorted(self.stopped.items()))
        return (
            f"upstream faults: {self.cases} cases passed, {self.faults} faults injected; "
            f"{self.completed} passes completed equal to the fault-free result, "
            f"{sum(self.stopped.values())} stopped cleanly ({stopped or 'none'}); "
            f"{self.counted} highlight counts checked, 0 lost, 0 duplicated"
        )


TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def _report_tally(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or not TALLY.cases:
        return
    with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
        reporter.write_line("")
        reporter.write_line(TALLY.line())


# --- the matrix ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, Script], Reference]:
    """The fault-free result per (seed, script), computed once."""
    cache: dict[tuple[int, Script], Reference] = {}
    root = tmp_path_factory.mktemp("references")

    def get(seed: int, script: Script) -> Reference:
        if (seed, script) not in cache:
            reference = reference_run(root / f"{script}-{seed}", seed, script)
            assert reference.census.checked > 100, "too few highlights to count"
            assert reference.census.problems == ()
            cache[seed, script] = reference
        return cache[seed, script]

    return get


def _check_waits(case: FaultCase, armed: Armed, outcome: PassOutcome) -> None:
    if armed.waits is not None:
        assert len(outcome.sleeps) == len(armed.waits), (outcome.sleeps, armed.waits)
        for asked, wait in zip(outcome.sleeps, armed.waits, strict=True):
            assert wait.allows(asked), f"asked for {asked} s, expected {wait}"
    if case.retried:
        # One wait per fault, but for the last one of a request given up on.
        gave_up = 1 if outcome.exit_code == 4 else 0
        assert len(outcome.sleeps) == len(outcome.fired) - gave_up, (outcome.sleeps, outcome.fired)
    assert all(0 <= asked <= RETRY.max_retry_after for asked in outcome.sleeps)


def _check_untouched(ws: Workspace, files: Files, tables: Tables) -> None:
    after = ws.files()
    assert after == files, f"a stopped pass changed {changed_files(files, after)}"
    assert ws.tables() == tables, "a stopped pass changed the state store"


def _check_error(outcome: PassOutcome) -> None:
    message = str(outcome.error)
    assert TOKEN not in message
    # It names what failed: the endpoint, the export page, or the token.
    assert any(word in message for word in ("/api/v2/", "export page", "token")), message
    if isinstance(outcome.error, ReadwiseUnavailable):
        assert outcome.error.endpoint in (AUTH_PATH, EXPORT_PATH)


def _check_converged(ws: Workspace, reference: Reference) -> int:
    """The vault and the state's page records equal the reference; returns highlights counted."""
    files = ws.files()
    assert files == reference.files, changed_files(reference.files, files)
    assert ws.pages_digest() == reference.pages
    counted = census(files, ws.library)
    assert counted.problems == ()
    return counted.checked


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("case", "script"), MATRIX, ids=[f"{script}-{case.name}" for case, script in MATRIX]
)
def test_fault(
    case: FaultCase,
    script: Script,
    seed: int,
    tmp_path: Path,
    references: Callable[[int, Script], Reference],
    capsys: pytest.CaptureFixture[str],
) -> None:
    reference = references(seed, script)
    # Faults are placed by page of the pass as it starts, before any change between pages.
    pages = references(seed, "incremental" if script == "changing" else script).export_pages
    with open_workspace(tmp_path, seed) as ws:
        now, edits = prepare(ws, seed, script)
        armed = case.arm(
            Scenario(seed, random.Random(f"{case.name}/{seed}"), pages, ws.library, edits)
        )
        files_before, tables_before = ws.files(), ws.tables()

        outcome = ws.run_pass(now, plan=armed.plan, seed=seed)

        assert outcome.fired, "the fault never reached the pass"
        assert not outcome.file_errors
        if outcome.exit_code == 0:
            assert case.expect in ("complete", "either"), f"expected exit {case.expect}"
            if script != "changing":  # a changing library is whole only after the next pass
                files = ws.files()
                assert files == reference.files, changed_files(reference.files, files)
        else:
            assert case.expect in (outcome.exit_code, "either"), outcome.error
            assert outcome.exit_code in (3, 4), outcome.error
            _check_untouched(ws, files_before, tables_before)
            _check_error(outcome)
        _check_waits(case, armed, outcome)

        follow_up = ws.run_pass(now)
        assert follow_up.exit_code == 0, follow_up.error
        assert not follow_up.file_errors and follow_up.sleeps == []
        counted = _check_converged(ws, reference)
    assert TOKEN not in "".join(capsys.readouterr())
    TALLY.add(outcome, counted)


# --- the CLI: one `syncd --once` per fault family ----------------------------------------------


@dataclass(frozen=True)
class CliCase:
    name: str
    plan: Callable[[Scenario], FaultPlan]
    exit_code: int
    script: Script = "incremental"


def _every_attempt(make: Callable[[], Fault]) -> Callable[[Scenario], FaultPlan]:
    """`make()` on every attempt at the first export page: the pass gives up."""
    return lambda _s: FaultPlan.on_export_requests(
        {1 + n: make() for n in range(RETRY.max_attempts)}
    )


CLI_CASES = [
    # Retry-After 0 and backoff capped at 0.2 s by the config: the subprocess really waits.
    CliCase(
        "429",
        lambda _s: (
            FaultPlan()
            .add_path_fault(AUTH_PATH, Fault.throttle(retry_after=0))
            .add_export_faults(
                {1: Fault.throttle(retry_after=None), 2: Fault.throttle(retry_after=0)}
            )
        ),
        0,
    ),
    CliCase("5xx", _every_attempt(lambda: Fault.status(503)), 4),
    CliCase("slow-reply", _every_attempt(lambda: Fault.delay(SLOW)), 4),
    CliCase(
        "cut-body",
        lambda s: FaultPlan.on_export_requests(
            {1 + n: _cut(s.rng) for n in range(RETRY.max_attempts)}
        ),
        4,
    ),
    CliCase("captive-portal", _every_attempt(Fault.captive_portal), 4),
    CliCase("empty-page", lambda _s: FaultPlan.on_export_requests({2: Fault.empty_page()}), 0),
    CliCase(
        "repeat-cursor", lambda _s: FaultPlan.on_export_requests({2: Fault.repeat_cursor()}), 4
    ),
    CliCase("token-revoked", lambda _s: FaultPlan().revoke_token_from(3), 3),
    CliCase(
        "library-changes",
        lambda s: FaultPlan.on_export_requests(
            {2: Fault.run(lambda: change_between_pages(s.library, s.seed, _edits(s)))}
        ),
        0,
        "changing",
    ),
]


def _edits(s: Scenario) -> UpstreamEdits:
    assert s.edits is not None
    return s.edits


def _run_cli(ws: Workspace, now: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "READWISE_"))}
    env.update(READWISE_TOKEN=TOKEN, PYTHONPATH=str(ROOT), SYNCD_NOW=now)
    return subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(ws.config_path), "--once"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_cli_exit_code_and_no_token(
    case: CliCase, tmp_path: Path, references: Callable[[int, Script], Reference]
) -> None:
    seed = 1
    reference = references(seed, case.script)
    with open_workspace(tmp_path, seed) as ws:
        now, edits = prepare(ws, seed, case.script)
        pages = references(seed, "incremental").export_pages
        scenario = Scenario(seed, random.Random(f"cli/{case.name}"), pages, ws.library, edits)
        files_before, tables_before = ws.files(), ws.tables()
        ws.switch.arm(case.plan(scenario))
        try:
            result = _run_cli(ws, now.isoformat())
        finally:
            ws.switch.disarm()

        assert result.returncode == case.exit_code, result.stderr[-2000:]
        assert ws.server.fired_faults, "the fault never reached the pass"
        assert TOKEN not in result.stdout + result.stderr
        for path in ws.state.iterdir():  # the database, its WAL, the lock file
            assert TOKEN.encode() not in path.read_bytes(), path.name
        if case.exit_code:
            assert "syncd: error:" in result.stderr
            _check_untouched_but_runs(ws, files_before, tables_before)
        elif case.script != "changing":
            assert ws.files() == reference.files

        follow_up = ws.run_pass(now)
        assert follow_up.exit_code == 0 and not follow_up.file_errors, follow_up.error
        _check_converged(ws, reference)


def _check_untouched_but_runs(ws: Workspace, files: Files, tables: Tables) -> None:
    """As `_check_untouched`, except the CLI's run log, which gains one error row per target."""
    after = ws.files()
    assert after == files, f"a stopped pass changed {changed_files(files, after)}"
    now = dump_tables(ws.state / "state.sqlite3")
    assert {k: v for k, v in now.items() if k != "runs"} == {
        k: v for k, v in tables.items() if k != "runs"
    }
    new_runs = [row for row in now["runs"] if row not in tables["runs"]]
    assert sorted((row[1], row[4]) for row in new_runs) == [("lsq", "error"), ("obs", "error")]
