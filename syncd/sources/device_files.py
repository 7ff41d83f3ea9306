"""Reading files on a device that may be written to, unplugged or swapped while we read.

`read_settled` reads a file until two reads in a row agree on size, mtime and content hash: a
read torn by a save in progress (or a device unplugged mid-read) is retried, and one that never
settles raises `Unsettled`, so the pass skips the source instead of syncing half a file. Files
above a size limit are refused before a byte is read, so a 200 MB file costs a stat, not memory.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from syncd.sources.koreader import SIDECAR_NAME
from syncd.sources.local import LocalSourceError

MiB = 1024 * 1024
CLIPPINGS_MAX_BYTES = 64 * MiB  # a 20,000-entry My Clippings.txt is about 6 MB
SIDECAR_MAX_BYTES = 16 * MiB  # a sidecar with 1,000 highlights is about 0.5 MB
SETTLE_ATTEMPTS = 6
SETTLE_PAUSE = 0.05  # seconds between reads that disagree: long enough for a save to finish
# A file modified less than this long ago is read again after a pause, even if two reads agree
# at once (most sidecars are old: read twice back to back, no pause).
SETTLE_WINDOW_NS = 1_000_000_000


class Unsettled(Exception):
    """The file kept changing while it was read: try again on a later pass."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    data: bytes
    size: int
    mtime_ns: int
    digest: bytes

    @property
    def signature(self) -> tuple[int, int, bytes]:
        return (self.size, self.mtime_ns, self.digest)


def _read_once(path: Path, max_bytes: int) -> Snapshot | None:
    try:
        return _read_open(path, max_bytes)
    except (FileNotFoundError, NotADirectoryError):
        return None  # not there, or gone mid-read (unplugged): the same to us
    except PermissionError as error:
        raise LocalSourceError(f"{path}: cannot be read ({error.strerror})") from None
    except OSError as error:
        # EIO, ENODEV, ESTALE...: a device going away under the read. Try again next pass.
        raise Unsettled(
            f"{path}: {error.strerror} while reading (unplugged?); retried later"
        ) from None


def _read_open(path: Path, max_bytes: int) -> Snapshot:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a pipe must not block the pass
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            what = "a folder" if stat.S_ISDIR(before.st_mode) else "a pipe or device"
            raise LocalSourceError(f"{path} is {what}, not a file")
        if before.st_size > max_bytes:
            raise LocalSourceError(
                f"{path} is {before.st_size / MiB:.0f} MB, over the {max_bytes // MiB} MB this "
                "kind of file can be; not read"
            )
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > max_bytes:  # it grew while we read
                raise LocalSourceError(f"{path} grew over {max_bytes // MiB} MB; not read")
            chunks.append(chunk)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or len(
        data
    ) != after.st_size:
        # Changed under us: a signature no other read can equal, so the loop reads again.
        return Snapshot(data, -1, after.st_mtime_ns, b"")
    return Snapshot(data, after.st_size, after.st_mtime_ns, hashlib.blake2b(data).digest())


def read_settled(
    path: Path,
    *,
    max_bytes: int,
    attempts: int = SETTLE_ATTEMPTS,
    pause: Callable[[], None] = lambda: time.sleep(SETTLE_PAUSE),
) -> Snapshot | None:
    """The file's bytes once two reads in a row agree on size, mtime and hash (with a pause
    between them when the file was modified within the last second); None if it is not there
    (a device not plugged in). Raises Unsettled if it never settles, LocalSourceError if it is
    not a regular file or too big."""
    previous: Snapshot | None = None
    for attempt in range(attempts):
        current = _read_once(path, max_bytes)
        if current is None:
            return None
        if previous is not None and current.size >= 0 and current.signature == previous.signature:
            return current
        previous = current
        fresh = time.time_ns() - current.mtime_ns < SETTLE_WINDOW_NS
        if attempt or fresh:  # a file saved a moment ago may still be being written
            pause()
    raise Unsettled(f"{path} kept changing while it was read ({attempts} reads); retried later")


def decode(snapshot: Snapshot, path: Path) -> str:
    try:
        return snapshot.data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LocalSourceError(
            f"{path}: not UTF-8 text (byte {error.start}): binary data, not a highlight file"
        ) from None


def find_sidecars(folder: Path) -> Iterator[Path]:
    """Every `*.sdr/metadata.<ext>.lua` under `folder` (or `folder` itself if it is one), in a
    stable order. Symlinked folders are not followed (a loop on a device must not hang us)."""
    if folder.is_file():
        yield folder
        return
    found: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(dirs)  # hidden ones too: Kobo keeps KOReader under .adds/
        if root.endswith(".sdr"):
            found.extend(Path(root) / name for name in files if SIDECAR_NAME.match(name))
    yield from sorted(found)
