"""On-demand benchmark of the resident daemon (`syncd` without --once) against the stand-in.

    python -m tests.bench.daemon [--books 3000 --highlights 50000 --seed 1]
                                 [--idle-seconds 60] [--passes 10] [--saves 50] [--workdir DIR]

One daemon runs for the whole benchmark (one Obsidian and one Logseq target, JSON logs on a pipe,
as under systemd). After its first pass it measures:

- idle CPU: user + system time of the daemon process over `--idle-seconds` with nothing to do
  (poll interval 5 minutes, so no pull falls in the window), as % of one core;
- save -> state: `--saves` times, a user edit appended to a different page; the time from the
  file's close to the `page.edited` event, which the daemon logs after the state commit;
- RSS over passes: SIGHUP to a 1 s poll interval, then `--passes` passes, each after 10
  upstream edits; the daemon's VmRSS after each.

Prints the figures and whether each target is MET or MISSED; asserts nothing; never collected by
pytest. The windows are measurement periods, not synchronisation.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from syncd.standin import StandinServer, generate_library
from tests.bench._harness import (
    MB,
    TOKEN,
    child_env,
    edit_spread,
    editable_books,
    make_workspace,
)

IDLE_CPU_TARGET = 1.0  # % of one core
SAVE_P95_TARGET_S = 1.0
RSS_GROWTH_TARGET_MB = 5.0  # from pass 2 to the last: "no growth", with allocator noise
WAIT_S = 600.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class DaemonUnderTest:
    """`syncd` as a child; its JSON events collected by a thread, waited on by name."""

    def __init__(self, config: Path, *, runner: Sequence[str] = ("-m", "syncd")) -> None:
        """`runner`: what the interpreter runs, given `--config CONFIG` (default: syncd)."""
        self.process = subprocess.Popen(
            [sys.executable, *runner, "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        self.events: list[tuple[float, dict[str, Any]]] = []  # (time received, event)
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._cond:
                self.events.append((time.time(), event))
                self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait_for(self, name: str, *, since: int, **fields: object) -> tuple[float, dict[str, Any]]:
        def found() -> tuple[float, dict[str, Any]] | None:
            for received, event in self.events[since:]:
                if event.get("event") == name and all(event.get(k) == v for k, v in fields.items()):
                    return received, event
            return None

        with self._cond:
            self._cond.wait_for(
                lambda: found() is not None or self.process.poll() is not None, timeout=WAIT_S
            )
            result = found()
        if result is None:
            raise RuntimeError(f"the daemon never logged {name} {fields}")
        return result

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def rss_mb(self, field: str = "VmRSS") -> float:
        """VmRSS (or another /proc/PID/status field in kB, e.g. VmHWM) in MB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / MB
        raise RuntimeError(f"no {field}")

    def stop(self) -> float:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return time.monotonic() - started


def _event_time(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["timestamp"]).timestamp()


def _verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--books", type=int, default=3000)
    parser.add_argument("--highlights", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--saves", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)

    library = generate_library(books=args.books, highlights=args.highlights, seed=args.seed)
    with (
        tempfile.TemporaryDirectory(dir=args.workdir, prefix="syncd-daemon-bench-") as tmp,
        StandinServer(library, token=TOKEN) as server,
    ):
        ws = make_workspace(Path(tmp), "daemon", server.base_url)
        base_config = ws.config.read_text(encoding="utf-8")
        ws.config.write_text(base_config + '\n[daemon]\npoll_interval = "5m"\n', encoding="utf-8")
        print(f"library: {args.books} books, {args.highlights} highlights (seed {args.seed})")

        started = time.monotonic()
        daemon = DaemonUnderTest(ws.config)
        try:
            _, ready = daemon.wait_for("daemon.ready", since=0)
            _, first = daemon.wait_for("pass.summary", since=0)
            first_pass_s = time.monotonic() - started
            pages = {t["target"]: t["created"] for t in first["targets"]}
            print(f"first pass (spawn to summary): {first_pass_s:.1f} s, pages {pages}")
            print(f"watching: {ready['watch']}")

            # Per target, the echoes of the first pass's writes are handled in order, before a
            # later save: once a save in each target is recorded, the daemon is idle.
            obsidian_pages = sorted(
                p for p in (ws.obsidian / "Readwise").rglob("*.md") if not p.name.startswith(".")
            )
            logseq_page = min((ws.logseq / "pages").glob("*.md"))
            mark = daemon.mark()
            _append(obsidian_pages[0], "settle")
            _append(logseq_page, "- settle")
            daemon.wait_for("page.edited", since=mark, target="obs")
            daemon.wait_for("page.edited", since=mark, target="lsq")

            # Idle CPU.
            cpu_before = daemon.cpu_seconds()
            window_start = time.monotonic()
            time.sleep(args.idle_seconds)  # the measurement window itself
            window = time.monotonic() - window_start
            idle_pct = 100 * (daemon.cpu_seconds() - cpu_before) / window
            rss_idle = daemon.rss_mb()

            # Save -> state.
            latencies: list[float] = []
            for page in obsidian_pages[1 : 1 + args.saves]:
                mark = daemon.mark()
                saved_at = _append(page, "a line typed by the user")
                _, event = daemon.wait_for(
                    "page.edited", since=mark, path=page.relative_to(ws.obsidian).as_posix()
                )
                latencies.append(_event_time(event) - saved_at)
            cuts = statistics.quantiles(latencies, n=100, method="inclusive")
            p50, p95 = statistics.median(latencies), cuts[94]

            # RSS over passes, with upstream changes for each.
            mark = daemon.mark()
            ws.config.write_text(base_config + "\n[daemon]\npoll_interval = 1\n", encoding="utf-8")
            daemon.process.send_signal(signal.SIGHUP)
            daemon.wait_for("config.reloaded", since=mark)
            candidates = editable_books(library)
            rss: list[float] = []
            pass_seconds: list[float] = []
            for round_ in range(args.passes):
                edit_spread(library, candidates, count=10, round_=round_)
                mark = daemon.mark()
                _, summary = daemon.wait_for("pass.summary", since=mark)
                # A pass that began before the edits may have missed them: wait for the next.
                if sum(t["updated"] for t in summary["targets"]) == 0:
                    _, summary = daemon.wait_for("pass.summary", since=daemon.mark())
                pass_seconds.append(summary["elapsed_s"])
                rss.append(daemon.rss_mb())
        finally:
            stop_s = daemon.stop()

    growth = rss[-1] - rss[1] if len(rss) > 1 else 0.0
    print()
    print(f"{'measure':38} {'value':>14}  target")
    print(
        f"{'idle CPU over ' + f'{window:.0f} s':38} {idle_pct:13.3f}%  "
        f"< {IDLE_CPU_TARGET:g}% of one core: {_verdict(idle_pct < IDLE_CPU_TARGET)}"
    )
    print(f"{'RSS when idle':38} {rss_idle:12.1f} MB")
    print(f"{'save -> state record, p50':38} {p50 * 1000:11.0f} ms")
    print(
        f"{'save -> state record, p95':38} {p95 * 1000:11.0f} ms  "
        f"< {SAVE_P95_TARGET_S * 1000:.0f} ms: {_verdict(p95 < SAVE_P95_TARGET_S)}"
    )
    print(
        f"{'save -> state record, max':38} {max(latencies) * 1000:11.0f} ms"
        f"  ({len(latencies)} saves)"
    )
    print(f"{'pass with 10 upstream edits, median':38} {statistics.median(pass_seconds):12.3f} s")
    print(
        f"{'RSS after each of ' + str(len(rss)) + ' passes':38} "
        + " ".join(f"{value:.0f}" for value in rss)
        + " MB"
    )
    print(
        f"{'RSS growth, pass 2 -> ' + str(len(rss)):38} {growth:+12.1f} MB  "
        f"< {RSS_GROWTH_TARGET_MB:g} MB: {_verdict(growth < RSS_GROWTH_TARGET_MB)}"
    )
    print(f"{'SIGTERM to exit':38} {stop_s:12.2f} s  < 5 s: {_verdict(stop_s < 5)}")
    return 0


def _append(page: Path, line: str) -> float:
    """Append a line like an editor's save; the wall-clock time the file was closed."""
    with open(page, "a", encoding="utf-8") as handle:
        handle.write(f"\n{line} {time.monotonic_ns()}\n")
    return time.time()


if __name__ == "__main__":
    sys.exit(main())
