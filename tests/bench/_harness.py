"""Building blocks for the on-demand benchmarks: workspaces, timed child processes with their own
peak RSS, the write floors, and upstream edits. Nothing here asserts; it only measures."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from syncd.standin import Library

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "bench-token-5d2e8c41a9f07b36"
MB = 1024 * 1024
_VMHWM = re.compile(r"BENCH_VMHWM_KB (\d+)")
# syncd's forked worker (a big pass over two targets) logs the memory it held alone (not shared
# with syncd by the fork): counted on top of syncd's own peak.
_WORKER_PEAK = re.compile(r'"private_mb": ([0-9.]+)[^\n]*"event": "worker.done"')
# `syncd: obs: 3000 created, 0 updated, 0 unchanged, 49500 highlights added (1.23 s); ...`
_SUMMARY_PART = re.compile(
    r"(?P<name>[\w.-]+): (?P<created>\d+) created, (?P<updated>\d+) updated, "
    r"(?P<unchanged>\d+) unchanged, (?P<added>\d+) highlights? added"
    r"(?:, (?P<failed>\d+) FAILED)?"
)


@dataclass(frozen=True, slots=True)
class Workspace:
    """One fresh Obsidian vault, Logseq graph and state dir, with the config naming them."""

    root: Path
    config: Path
    obsidian: Path
    logseq: Path
    state: Path

    @property
    def seeded(self) -> frozenset[Path]:
        """Files the benchmark put there itself (so not something syncd produced)."""
        return frozenset({self.logseq / "logseq" / "config.edn"})


def make_workspace(
    parent: Path, name: str, base_url: str, *, templates: Path | None = None
) -> Workspace:
    """Fresh vaults, graph, state and config; `templates`: a folder with `obsidian/` and
    `logseq/` template sets the two targets use (default: Readwise's defaults)."""
    root = parent / name
    obsidian = root / "vault"
    logseq = root / "graph"
    state = root / "state"
    obsidian.mkdir(parents=True)
    (logseq / "logseq").mkdir(parents=True)
    (logseq / "logseq" / "config.edn").write_text(
        '{:meta/version 1\n :journal/page-title-format "MMM do, yyyy"}\n', encoding="utf-8"
    )
    config = root / "config.toml"
    config.write_text(
        f"""[readwise]
base_url = "{base_url}"

[state]
dir = "{state.as_posix()}"

[[targets]]
name = "obs"
format = "obsidian"
vault = "{obsidian.as_posix()}"
{_templates_line(templates, "obsidian")}
[[targets]]
name = "lsq"
format = "logseq"
vault = "{logseq.as_posix()}"
{_templates_line(templates, "logseq")}""",
        encoding="utf-8",
    )
    return Workspace(root, config, obsidian, logseq, state)


def _templates_line(templates: Path | None, fmt: str) -> str:
    return "" if templates is None else f'templates = "{(templates / fmt).as_posix()}"\n'


# ---- child processes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildRun:
    wall_s: float
    peak_rss_mb: float  # syncd's peak RSS (VmHWM, tests/bench/_rss.py) + its worker's own memory
    returncode: int
    stdout: str
    stderr: str
    cpu_s: float = 0.0  # user + system seconds of the child: what noise on the disk cannot inflate

    def check(self, what: str) -> ChildRun:
        if self.returncode != 0:
            tail = "\n".join(self.stderr.splitlines()[-30:])
            raise RuntimeError(f"{what} exited {self.returncode}; stderr tail:\n{tail}")
        return self


def child_env(root: Path = ROOT) -> dict[str, str]:
    """The environment of a syncd child: the bench's token, and syncd imported from `root`
    (this checkout, or another one a benchmark compares it with)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["READWISE_TOKEN"] = TOKEN
    env["PYTHONPATH"] = str(root)
    return env


def settle_disk() -> None:
    """Flush dirty pages first, so writeback of earlier work is not billed to the next timing."""
    os.sync()


def run_child(argv: Sequence[str], *, timeout: float = 900.0, root: Path = ROOT) -> ChildRun:
    """Run argv to completion; wall time includes interpreter start-up and imports.

    The disk is settled (os.sync) before the clock starts.

    os.wait4 reaps exactly this child; its peak RSS is the VmHWM the child reports itself
    (wait4's ru_maxrss would include the benchmark's own memory, inherited across fork).
    stdout/stderr are pipes (as under cron or systemd), each drained by a thread so a chatty
    child never blocks; a file on the vault's disk would make log writes queue behind fsyncs.
    """
    settle_disk()
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=child_env(root),
        cwd=root,  # `python -m` looks in the working directory first
    )
    captured: dict[str, bytes] = {}

    def drain(name: str, stream: IO[bytes]) -> None:
        with stream:
            captured[name] = stream.read()

    assert proc.stdout is not None and proc.stderr is not None  # both are PIPE above
    readers = [
        threading.Thread(target=drain, args=("out", proc.stdout), daemon=True),
        threading.Thread(target=drain, args=("err", proc.stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    # A timer kills a hung child; the blocking wait4 below then returns at once.
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen so
    for reader in readers:
        reader.join()
    stderr = captured.get("err", b"").decode("utf-8", "replace")
    own_peak = _VMHWM.search(stderr)
    return ChildRun(
        wall_s=wall,
        # The child's own VmHWM when it reports one; ru_maxrss (KiB) would include the
        # benchmark's own memory, inherited across fork.
        # syncd's peak plus what its worker held alone: what the two held at most at once.
        peak_rss_mb=(int(own_peak[1]) if own_peak else usage.ru_maxrss) * 1024 / MB
        + sum(float(mb) for mb in _WORKER_PEAK.findall(stderr)),
        returncode=proc.returncode,
        stdout=captured.get("out", b"").decode("utf-8", "replace"),
        stderr=stderr,
        cpu_s=usage.ru_utime + usage.ru_stime,
    )


def syncd_argv(config: Path, *, quiet: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.bench._rss",  # syncd's CLI, reporting its own peak RSS (see _rss.py)
        "--config",
        str(config),
        "--once",
        *(["-q"] if quiet else []),
    ]


def parse_summary(stdout: str) -> dict[str, dict[str, int]]:
    """Per target counts from syncd's summary line (empty if -q hid it)."""
    counts: dict[str, dict[str, int]] = {}
    for line in stdout.splitlines():
        if not line.startswith("syncd: "):
            continue
        for match in _SUMMARY_PART.finditer(line):
            counts[match["name"]] = {
                key: int(match[key] or 0)
                for key in ("created", "updated", "unchanged", "added", "failed")
            }
    return counts


def floor_paging(base_url: str) -> dict[str, float]:
    """Plain httpx paging of the full export, in its own process (see _floor.py)."""
    run = run_child([sys.executable, "-m", "tests.bench._floor", base_url]).check("floor paging")
    result: dict[str, float] = json.loads(run.stdout)
    result["peak_rss_mb"] = run.peak_rss_mb
    return result


# ---- the write floor ----------------------------------------------------------------------------


def produced_files(workspace: Workspace) -> dict[str, bytes]:
    """Every file syncd wrote in both vaults, keyed by a path relative to the workspace root."""
    files: dict[str, bytes] = {}
    for vault in (workspace.obsidian, workspace.logseq):
        for path in sorted(vault.rglob("*")):
            if path.is_file() and path not in workspace.seeded:
                files[path.relative_to(workspace.root).as_posix()] = path.read_bytes()
    return files


WriteMode = Literal["plain", "fsync", "atomic"]


def time_writes(files: Mapping[str, bytes], dest: Path, mode: WriteMode) -> float:
    """Seconds to write `files` under the fresh folder `dest` (folders made inside the timing).

    plain: open/write/close; fsync: plus os.fsync of each file; atomic: what a safe writer
    does at least (temp file, fsync, os.replace, fsync of the folder).
    """
    made: set[Path] = set()
    started = time.perf_counter()
    for relative, data in files.items():
        path = dest / relative
        folder = path.parent
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        if mode == "atomic":
            temp = folder / f".bench-{len(made)}.tmp"
            with open(temp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        else:
            with open(path, "wb") as handle:
                handle.write(data)
                if mode == "fsync":
                    handle.flush()
                    os.fsync(handle.fileno())
    return time.perf_counter() - started


# ---- upstream changes ---------------------------------------------------------------------------


def editable_books(library: Library) -> list[tuple[int, int]]:
    """(book id, one live highlight id) for every live book, in ascending book id."""
    snapshot = library.snapshot()
    found: list[tuple[int, int]] = []
    for book_id in sorted(snapshot.books):
        if snapshot.books[book_id].is_deleted:
            continue
        for highlight_id in snapshot.highlight_ids_by_book.get(book_id, ()):
            highlight = snapshot.highlights[highlight_id]
            if not highlight.is_deleted and not highlight.is_discard:
                found.append((book_id, highlight_id))
                break
    return found


def edit_spread(
    library: Library, candidates: Sequence[tuple[int, int]], *, count: int, round_: int
) -> list[int]:
    """Edit one highlight in each of `count` books spread evenly over the library; a different
    set of books for every round. Returns the book ids touched."""
    step = max(1, len(candidates) // count)
    picked = [candidates[(i * step + round_ * 7) % len(candidates)] for i in range(count)]
    for _book_id, highlight_id in picked:
        current = library.highlight(highlight_id).text
        library.edit_highlight(highlight_id, text=f"{current} [bench edit {round_}]")
    return [book_id for book_id, _ in picked]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))
