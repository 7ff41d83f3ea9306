"""File-system safety for vault writes: safe file names, paths kept inside the vault, atomic writes.

Adapters encode titles their own way first (Readwise drops `:` `?` `"`, Logseq escapes `/` as
`%2F`); `safe_file_name` is the last line of defence and holds for any input string. Every path
syncd writes goes through `resolve_inside`, and every write through `atomic_write`.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import itertools
import os
import re
import secrets
import stat
import sys
import unicodedata
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import cast

from syncd.errors import UnsafePathError, VaultError

# Forbidden on Windows/Android/macOS file systems (and `/` everywhere).
_FS_FORBIDDEN = frozenset('/\\:*?"<>|')
# Break Obsidian/Logseq wiki links: [[a#heading]], [[a^block]], [[a]]], [[a|alias]].
_LINK_FORBIDDEN = frozenset("#^[]")
_FALLBACK_STEM = "Untitled"
# Windows refuses these as a file's base name, whatever the extension; the superscript digits
# are reserved too.
_RESERVED_BASES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"{dev}{digit}" for dev in ("COM", "LPT") for digit in "123456789¹²³"]
)
_ZWJ = "\u200d"
# C0/C1 controls, lone surrogates (not encodable), and U+2028/U+2029 (Zl/Zp: line breaks).
_SEPARATOR_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})

TEMP_PREFIX = ".syncd-"
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\.syncd-[0-9a-f]{16}\.tmp$")
# Errors that mean "this vault cannot be written", as opposed to a bug in syncd.
_VAULT_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT})


# ---------------------------------------------------------------------------------------------
# Safe names


_DROP_TABLES: dict[frozenset[str], dict[int, None]] = {}


def _clean_chars(text: str, forbidden: frozenset[str]) -> str:
    """Controls and separators become a space (they usually separate words); forbidden drop."""
    if text.isascii() and text.isprintable():
        # Printable ASCII has no control or separator characters: only drop the forbidden.
        table = _DROP_TABLES.get(forbidden)
        if table is None:
            table = _DROP_TABLES[forbidden] = dict.fromkeys(map(ord, forbidden))
        return text.translate(table)
    out: list[str] = []
    for char in text:
        if char in forbidden:
            continue
        out.append(" " if unicodedata.category(char) in _SEPARATOR_CATEGORIES else char)
    return "".join(out)


def _is_extender(char: str) -> bool:
    """True for code points that belong to the grapheme before them."""
    code = ord(char)
    return (
        unicodedata.combining(char) != 0
        or unicodedata.category(char) in ("Mn", "Me", "Mc")
        or char == _ZWJ
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin tones
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _cut_point(text: str, end: int) -> int:
    """Move `end` back so text[:end] does not split a grapheme cluster (close approximation)."""
    while 0 < end < len(text) and (_is_extender(text[end]) or text[end - 1] == _ZWJ):
        end -= 1
    if 0 < end < len(text) and _is_regional_indicator(text[end]):
        # Flags are pairs of regional indicators: keep an even run before the cut.
        run = 0
        while run < end and _is_regional_indicator(text[end - 1 - run]):
            run += 1
        end -= run % 2
    return end


def _truncate_utf8(text: str, budget: int) -> str:
    """The longest grapheme-whole prefix of `text` whose UTF-8 length is at most `budget`."""
    if len(text.encode("utf-8")) <= budget:
        return text
    used = 0
    end = 0
    for char in text:
        size = len(char.encode("utf-8"))
        if used + size > budget:
            break
        used += size
        end += 1
    return text[: _cut_point(text, end)]


_EDGES = re.compile(r"^[\s.]+|[\s.]+$")


def _strip_edges(stem: str) -> str:
    # Leading dots hide the file from Obsidian and Logseq; Windows drops trailing dots and
    # spaces, so two titles could collide on disk.
    return _EDGES.sub("", stem)


def is_reserved_name(name: str) -> bool:
    """True when Windows reserves `name` (e.g. "con", "COM1.md", "nul .txt")."""
    base = name.split(".", 1)[0].rstrip(" ")
    return base.upper() in _RESERVED_BASES


def _fit(stem: str, budget: int) -> str:
    """`stem` cut to `budget` UTF-8 bytes, NFC, without edge spaces/dots (maybe empty)."""
    while True:
        fitted = _strip_edges(unicodedata.normalize("NFC", _truncate_utf8(stem, budget)))
        if len(fitted.encode("utf-8")) <= budget:
            return fitted
        budget -= 1  # normalising grew the text (rare): cut one byte deeper


def _unreserve(stem: str) -> str:
    """Break a reserved base name ("CON", "nul.tar") with "_" right after the base."""
    base, dot, rest = stem.partition(".")
    return f"{base}_{dot}{rest}"


def safe_file_name(
    stem: str,
    disambiguator: str = "",
    *,
    ext: str = ".md",
    max_bytes: int = 200,
    link_safe: bool = True,
) -> str:
    """`stem + disambiguator + ext`, safe on every OS syncd's vaults are synced to.

    Guarantees for any `stem`: no `/\\:*?"<>|` (nor `#^[]` unless `link_safe` is False), no
    control, surrogate or line-separator characters, no leading/trailing whitespace or dots
    (a leading dot would hide the file), never empty/"."/".." (falls back to "Untitled"), not a
    Windows reserved name, NFC-normalised, and at most `max_bytes` bytes of UTF-8. Only the stem
    is truncated, never inside a grapheme; the disambiguator (e.g. " (123)") is kept whole.
    """
    forbidden = _FS_FORBIDDEN | _LINK_FORBIDDEN if link_safe else _FS_FORBIDDEN
    if ext and (
        not ext.startswith(".") or ext.endswith(".") or _clean_chars(ext, forbidden | {" "}) != ext
    ):
        raise ValueError(f"file extension must look like '.md', got {ext!r}")
    suffix = _clean_chars(unicodedata.normalize("NFC", disambiguator), forbidden).rstrip(". ")
    suffix += ext
    budget = max_bytes - len(suffix.encode("utf-8"))
    if budget < 2:  # room for one character plus the "_" a reserved name may need
        raise ValueError(f"max_bytes={max_bytes} leaves no room for a name before {suffix!r}")

    # NFC first so cleaning sees composed characters; again after, since dropping a character
    # can bring a base letter next to a combining mark.
    clean = _clean_chars(unicodedata.normalize("NFC", stem), forbidden)
    fitted = _fit(clean, budget) or _fit(_FALLBACK_STEM, budget)
    if is_reserved_name(fitted + suffix):
        fitted = _unreserve(_fit(fitted, budget - 1))
    return fitted + suffix


def fold_name(name: str) -> str:
    """The key under which two file names clash on case-insensitive, normalising file systems
    (macOS, Windows): compare `fold_name(a) == fold_name(b)`."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def disambiguators(book_id: int) -> Iterator[str]:
    """What makes a clashing name unique, in the order tried: "", then f" ({book_id})",
    f" ({book_id}-2)", f" ({book_id}-3)", ..."""
    return itertools.chain(("", f" ({book_id})"), (f" ({book_id}-{n})" for n in itertools.count(2)))


def unique_name(
    name_for: Callable[[str], str], taken_folded: Collection[str], book_id: int
) -> tuple[str, str]:
    """Pick a file name not in `taken_folded` (names already folded with `fold_name`).

    `name_for(disambiguator)` builds a file name, e.g. `lambda d: adapter.file_name(title, d)`.
    Tries each of `disambiguators(book_id)` and returns (file_name, disambiguator).
    """
    # Distinct disambiguators give distinct names, so len(taken) + 1 tries always find a free one.
    for disambiguator in itertools.islice(disambiguators(book_id), len(taken_folded) + 2):
        name = name_for(disambiguator)
        if fold_name(name) not in taken_folded:
            return name, disambiguator
    raise ValueError(f"name_for gave no free name for book {book_id}; are its names distinct?")


# ---------------------------------------------------------------------------------------------
# Paths inside the vault


def _unsafe(relative: object, vault_root: Path, why: str) -> UnsafePathError:
    return UnsafePathError(f"refusing path {str(relative)!r} in vault {vault_root}: {why}")


def resolve_inside(vault_root: Path, relative: str | PurePosixPath) -> Path:
    """The absolute path of `relative` under the vault, following symlinks that exist.

    Raises UnsafePathError when the result would leave the vault: absolute or `..` inputs,
    NUL, or a symlink (folder or final file, even dangling) inside the vault that points
    outside. The result is the vault root's resolved path joined with `relative` (symlinks
    below the root are checked, not followed). VaultError if the vault root does not exist.
    """
    text = str(relative)
    if "\0" in text:
        raise _unsafe(relative, vault_root, "contains a NUL character")
    rel = PurePosixPath(text)
    if rel.is_absolute():
        raise _unsafe(relative, vault_root, "absolute paths are not allowed")
    if ".." in rel.parts:
        raise _unsafe(relative, vault_root, "'..' is not allowed")
    try:
        root = vault_root.resolve(strict=True)
    except OSError as exc:
        raise VaultError(f"vault {vault_root} is not accessible: {exc.strerror or exc}") from exc
    candidate = root.joinpath(*rel.parts)
    # Non-strict resolution follows every symlink that exists, dangling ones included (a
    # dangling link could otherwise point a new file outside); missing parts are kept as is.
    real = candidate.resolve()
    if not real.is_relative_to(root):
        raise _unsafe(relative, vault_root, f"it leads outside the vault (to {real})")
    return candidate


# ---------------------------------------------------------------------------------------------
# Reads and atomic writes


def _vault_error(path: Path, action: str, exc: OSError) -> VaultError:
    return VaultError(f"cannot {action} {path}: {exc.strerror or exc}")


def read_regular(path: Path | str) -> tuple[bytes, os.stat_result] | None:
    """The bytes of the regular file at `path` and its stat, both from one open file; None if
    nothing is there. Something else there (a folder, a named pipe, a device) is the one
    VaultError this raises: O_NONBLOCK lets the open of a pipe return instead of blocking
    the pass until something writes to it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            what = "a folder" if stat.S_ISDIR(info.st_mode) else "a pipe or device"
            raise VaultError(f"{path} is {what}, not a note; left alone")
        with open(fd, "rb", closefd=False) as handle:
            return handle.read(), info
    finally:
        os.close(fd)


def read_text_if_exists(path: Path) -> str | None:
    """The file's text exactly as stored (UTF-8, no newline translation), or None if absent.
    Only a regular file is read (see read_regular)."""
    try:
        found = read_regular(path)
    except OSError as exc:
        if exc.errno in _VAULT_ERRNOS:
            raise _vault_error(path, "read", exc) from exc
        raise
    if found is None:
        return None
    data = found[0]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VaultError(f"{path} is not valid UTF-8 (byte {exc.start}): {exc.reason}") from exc


def _relative_to_vault(path: Path, vault_root: Path) -> PurePosixPath:
    if not path.is_absolute():
        return PurePosixPath(path.as_posix())
    for root in (vault_root.absolute(), vault_root.resolve()):
        if path.is_relative_to(root):
            return PurePosixPath(path.relative_to(root).as_posix())
    raise _unsafe(path, vault_root, "it is not under the vault root")


def _make_parents(vault_root: Path, folder: PurePosixPath) -> None:
    """Create each missing folder, checking every level stays inside the vault."""
    for depth in range(1, len(folder.parts) + 1):
        level = resolve_inside(vault_root, PurePosixPath(*folder.parts[:depth]))
        try:
            level.mkdir(exist_ok=True)
        except FileExistsError as exc:  # a file (or dangling link) where a folder should be
            raise _unsafe(folder, vault_root, f"{level} exists and is not a folder") from exc
        except OSError as exc:
            if exc.errno in _VAULT_ERRNOS:
                raise _vault_error(level, "create folder", exc) from exc
            raise


def _open_temp(folder: Path) -> tuple[int, Path]:
    while True:
        temp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
        try:
            # 0o666 through open(2) lets the kernel apply the user's umask, with no need to read
            # the process-wide umask (which cannot be done without changing it).
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp
        except FileExistsError:
            continue


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class StagedWrite:
    """A temp file holding the new text, beside the file it will replace."""

    target: Path  # where the text goes (resolved, inside the vault)
    temp: Path


def stage_write(
    path: Path | PurePosixPath,
    text: str,
    *,
    vault_root: Path,
    fsync: bool = True,
    folders: dict[PurePosixPath, Path] | None = None,
) -> StagedWrite:
    """First half of an atomic write: the text in a dot-named temp file in the target's folder.

    Missing folders are created inside the vault. A symlink at `path` that stays inside the vault
    is written through (the link is kept); one that leaves it is refused. An existing file keeps
    its permission bits; a new one gets the user's umask. `fsync=False` leaves durability to
    `make_durable` over a whole batch. `folders` caches, across one batch, folders already
    created and checked to resolve inside the vault. On error nothing is left behind.
    """
    data = text.encode("utf-8")  # before touching the disk: lone surrogates fail here
    relative = _relative_to_vault(Path(path), vault_root)
    if not relative.name:
        raise _unsafe(path, vault_root, "it names the vault root, not a file")
    if ".." in relative.parts:
        raise _unsafe(path, vault_root, "it climbs out with '..'")
    target = _cached_target(relative, folders)
    if target is None:
        _make_parents(vault_root, relative.parent)
        # Write where the path really leads (checked above to stay inside the vault), so a
        # user's symlink to another note in the vault is kept rather than replaced by a file.
        target = resolve_inside(vault_root, relative).resolve()
        if folders is not None and not _is_symlink(vault_root / relative):
            folders[relative.parent] = target.parent
    try:
        existing = target.stat()
    except FileNotFoundError:
        existing_mode: int | None = None
    except OSError as exc:
        raise _vault_error(target, "inspect", exc) from exc
    else:
        if stat.S_ISDIR(existing.st_mode):
            raise VaultError(f"cannot write {target}: a folder of that name is in the way")
        existing_mode = stat.S_IMODE(existing.st_mode)

    temp: Path | None = None
    try:
        fd, temp = _open_temp(target.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if existing_mode is not None:
                os.fchmod(handle.fileno(), existing_mode)
            if fsync:
                os.fsync(handle.fileno())
        staged = StagedWrite(target=target, temp=temp)
        temp = None
        return staged
    except OSError as exc:
        if exc.errno in _VAULT_ERRNOS:
            raise _vault_error(target, "write", exc) from exc
        raise
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)


def _is_symlink(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _cached_target(
    relative: PurePosixPath, folders: dict[PurePosixPath, Path] | None
) -> Path | None:
    """The target inside an already checked folder, unless the name itself is a symlink (then
    the full check runs: a link may point anywhere)."""
    if folders is None or relative.parent not in folders:
        return None
    target = folders[relative.parent] / relative.name
    return None if _is_symlink(target) else target


def make_durable(staged: Collection[StagedWrite]) -> None:
    """Flush a batch of staged temp files to disk before any of them is renamed into place.

    One syncfs(2) per file system (Linux) costs about what one fsync does, instead of one per file
    (the difference between ~0.6 s and several seconds for a few thousand notes); elsewhere each
    temp file is fsynced.
    """
    if not staged:
        return
    syncfs = _syncfs()
    if syncfs is None:
        for item in staged:
            fd = os.open(item.temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return
    devices: dict[int, Path] = {}
    for item in staged:
        devices.setdefault(item.temp.stat().st_dev, item.temp.parent)
    for folder in devices.values():
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if syncfs(fd) != 0:
                error = ctypes.get_errno()
                cause = OSError(error, os.strerror(error))
                # `from cause`: the engine stops the pass on ENOSPC/EIO by the cause's errno.
                raise _vault_error(folder, "flush", cause) from cause
        finally:
            os.close(fd)


def commit_staged(item: StagedWrite) -> None:
    """Second half: rename the (durable) temp file over the target."""
    try:
        os.replace(item.temp, item.target)
    except OSError as exc:
        item.temp.unlink(missing_ok=True)
        if exc.errno in _VAULT_ERRNOS:
            raise _vault_error(item.target, "write", exc) from exc
        raise


def discard_staged(item: StagedWrite) -> None:
    item.temp.unlink(missing_ok=True)


def fsync_folders(folders: Collection[Path]) -> None:
    """Make renames durable: fsync each folder once, after all its renames."""
    for folder in folders:
        _fsync_folder(folder)


def atomic_write(path: Path, text: str, *, vault_root: Path) -> None:
    """Replace `path` (absolute under the vault, or relative to it) with `text`, atomically.

    Temp file `.syncd-<hex>.tmp` in the same folder, fsync, os.replace, fsync the folder (see
    `stage_write` for folders, symlinks and modes). On any error the temp file is removed and the
    old content stays; ENOSPC/EROFS/EACCES/EPERM/EDQUOT become VaultError.
    """
    staged = stage_write(path, text, vault_root=vault_root, fsync=True)
    commit_staged(staged)
    try:
        _fsync_folder(staged.target.parent)
    except OSError as exc:
        if exc.errno in _VAULT_ERRNOS:
            raise _vault_error(staged.target, "write", exc) from exc
        raise


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's syncfs(2), where there is one (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast(Callable[[int], int], function)


def cleanup_temp_files(folder: Path, *, recursive: bool = False) -> int:
    """Remove temp files a crashed write left in `folder` (and its non-hidden subfolders when
    `recursive`); only names exactly like ours are touched. Returns how many were removed."""
    removed = 0
    if not folder.is_dir():
        return 0
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in filenames:
            if _TEMP_NAME.match(name):
                Path(dirpath, name).unlink(missing_ok=True)
                removed += 1
        if not recursive:
            break
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
    return removed
