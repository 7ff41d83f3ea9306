"""Safe names, paths kept inside the vault, and atomic writes (syncd.adapters._fs)."""

from __future__ import annotations

import errno
import functools
import os
import stat
import unicodedata
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from syncd.adapters._fs import (
    _clean_chars,
    atomic_write,
    cleanup_temp_files,
    fold_name,
    is_reserved_name,
    read_text_if_exists,
    resolve_inside,
    safe_file_name,
    unique_name,
)
from syncd.errors import UnsafePathError, VaultError

FORBIDDEN = set('/\\:*?"<>|#^[]')
NASTY_TITLES = [
    "../../x",
    "/etc/passwd",
    "C:\\Windows\\system32",
    "a\x00b",
    ".",
    "..",
    "...",
    "",
    "   ",
    " . ",
    "CON",
    "con.txt",
    "Lpt9",
    "COM¹",
    "aux .tar.gz",
    "x" * 500,
    "é" * 300,
    "e\u0301" * 150,  # decomposed: NFC must compose it
    "👨‍👩‍👧‍👦" * 40,  # ZWJ sequences
    "🇫🇷" * 60,  # flags: pairs of regional indicators
    "שלום עולם" * 30,  # RTL
    "line\u2028break\u2029para\x85nel\x9f",
    "tab\tnew\nline\r",
    "\ud800lone surrogate\udfff",
    "[[Link|alias]] #tag ^block",
    "trailing dots...",
    ".hidden",
]

# Any unicode, including surrogates and controls, plus the nasty cases above.
titles = st.one_of(
    st.text(st.characters(codec=None, categories=None), max_size=400),
    # Surrogates, controls, marks, separators and symbols: the awkward categories, densely.
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Mn", "Me", "Zl", "Zp", "Zs", "So"])),
    st.text(alphabet=st.sampled_from([*sorted(FORBIDDEN), ".", " ", "\x00", "é", "\u0301"])),
    st.sampled_from(NASTY_TITLES),
)
disambiguators = st.sampled_from(["", " (1)", " (123456789)", " (42-17)"])


def assert_safe(name: str, *, ext: str = ".md", max_bytes: int = 200) -> None:
    assert name.endswith(ext)
    encoded = name.encode("utf-8")  # raises on lone surrogates
    assert len(encoded) <= max_bytes
    assert not FORBIDDEN & set(name), name
    for char in name:
        assert unicodedata.category(char) not in ("Cc", "Cs", "Zl", "Zp"), (name, char)
    stem = name[: -len(ext)] if ext else name
    assert stem not in ("", ".", "..")
    assert stem == stem.strip() and not stem.startswith("."), name
    assert not stem.endswith("."), name
    assert not is_reserved_name(name), name
    assert unicodedata.normalize("NFC", name) == name


@given(title=titles, disambiguator=disambiguators, max_bytes=st.integers(30, 255))
@example(title="../../x", disambiguator="", max_bytes=200)
@example(title="con", disambiguator="", max_bytes=200)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_safe_file_name_holds_every_rule(title: str, disambiguator: str, max_bytes: int) -> None:
    name = safe_file_name(title, disambiguator, max_bytes=max_bytes)
    assert_safe(name, max_bytes=max_bytes)
    assert name.endswith(disambiguator + ".md")  # the disambiguator is kept whole


@pytest.mark.parametrize("title", NASTY_TITLES)
def test_safe_names_stay_inside_the_vault(tmp_path: Path, title: str) -> None:
    name = safe_file_name(title)
    assert_safe(name)
    path = resolve_inside(tmp_path, PurePosixPath("Readwise/Books") / name)
    assert path.parent == tmp_path.resolve() / "Readwise" / "Books"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("A Testing Pattern: Adding Switches", "A Testing Pattern Adding Switches.md"),
        ("What?", "What.md"),
        ("", "Untitled.md"),
        ("..", "Untitled.md"),
        ("CON", "CON_.md"),
        ("nul.tar", "nul_.tar.md"),
        ("tab\there", "tab here.md"),
        ("  spaced  out.  ", "spaced  out.md"),
        ("e\u0301", "\u00e9.md"),
        ("中值得关注的几个变化", "中值得关注的几个变化.md"),
    ],
)
def test_safe_file_name_examples(title: str, expected: str) -> None:
    assert safe_file_name(title) == expected


def test_truncation_keeps_disambiguator_and_whole_graphemes() -> None:
    family = "👨‍👩‍👧‍👦"  # 25 bytes: four emoji joined by ZWJ
    name = safe_file_name(family * 20, " (99)", max_bytes=100)
    stem = name.removesuffix(" (99).md")
    assert len(name.encode()) <= 100
    assert stem == family * (len(stem) // len(family))  # only whole families
    assert len(stem) > 0

    flags = safe_file_name("🇫🇷" * 30, max_bytes=3 + 4 * 5)  # room for 2.5 flags
    assert flags == "🇫🇷🇫🇷.md"

    # NFC makes each "á̂" 4 bytes (U+00E1 U+0302); 3 spare bytes would fit a bare "á".
    marks = safe_file_name("a\u0301\u0302" * 50, max_bytes=3 + 7 * 4 + 3)
    assert marks == "\u00e1\u0302" * 7 + ".md"


def test_truncation_can_cut_a_reserved_name_into_being() -> None:
    # "CONSOLE" cut to 3 bytes is "CON": still never a reserved name.
    name = safe_file_name("CONSOLE", max_bytes=6)
    assert_safe(name, max_bytes=6)


def test_link_safe_false_keeps_hash_like_readwise() -> None:
    # Readwise keeps "#" in Obsidian file names ("#401 — Gary Keller ....md" in the fixtures).
    assert safe_file_name("#401 — Gary Keller", link_safe=False) == "#401 — Gary Keller.md"
    assert safe_file_name("#401 — Gary Keller") == "401 — Gary Keller.md"
    assert safe_file_name("a|b:c", link_safe=False) == "abc.md"


@pytest.mark.parametrize("ext", ["md", ".", ".m/d", ". md", ".md\x00"])
def test_bad_extension_is_rejected(ext: str) -> None:
    with pytest.raises(ValueError, match="extension"):
        safe_file_name("x", ext=ext)


def test_no_room_for_a_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="no room"):
        safe_file_name("x", " (12345)", max_bytes=10)


def test_reserved_names() -> None:
    assert is_reserved_name("con") and is_reserved_name("CON.md") and is_reserved_name("nul .x")
    assert is_reserved_name("com1.tar.gz") and is_reserved_name("LPT9")
    assert not is_reserved_name("console.md") and not is_reserved_name("com0")
    assert not is_reserved_name("CON (12).md")


# --- unique names ------------------------------------------------------------------------------


def test_unique_name_tries_plain_then_book_id_then_counter() -> None:
    def name_for(disambiguator: str) -> str:
        return safe_file_name("Title", disambiguator)

    assert unique_name(name_for, set(), 7) == ("Title.md", "")
    assert unique_name(name_for, {fold_name("TITLE.md")}, 7) == ("Title (7).md", " (7)")
    taken = {fold_name("title.md"), fold_name("Title (7).md"), fold_name("title (7-2).MD")}
    assert unique_name(name_for, taken, 7) == ("Title (7-3).md", " (7-3)")


@given(
    st.lists(
        st.sampled_from(["Straße", "STRASSE", "strasse", "e\u0301", "\u00e9", "É"]),
        min_size=1,
        max_size=12,
    )
)
def test_titles_equal_case_insensitively_get_distinct_names(titles_in: list[str]) -> None:
    taken: set[str] = set()
    chosen: list[str] = []
    for book_id, title in enumerate(titles_in, start=1):
        name, _ = unique_name(functools.partial(safe_file_name, title), taken, book_id)
        taken.add(fold_name(name))
        chosen.append(name)
    assert len({fold_name(name) for name in chosen}) == len(chosen)


def test_unique_name_gives_up_on_a_constant_name_function() -> None:
    with pytest.raises(ValueError, match="no free name"):
        unique_name(lambda _d: "same.md", {"same.md"}, 1)


# --- resolve_inside ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relative", ["../x.md", "a/../../x.md", "/etc/passwd", "a\x00b.md", PurePosixPath("/abs")]
)
def test_resolve_inside_refuses_escapes(tmp_path: Path, relative: str | PurePosixPath) -> None:
    with pytest.raises(UnsafePathError) as caught:
        resolve_inside(tmp_path, relative)
    assert str(tmp_path) in str(caught.value)
    assert caught.value.exit_code == 5


def test_resolve_inside_refuses_symlinked_folder_leading_out(tmp_path: Path) -> None:
    vault, outside = tmp_path / "vault", tmp_path / "outside"
    vault.mkdir()
    outside.mkdir()
    (vault / "Readwise").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="outside the vault"):
        resolve_inside(vault, "Readwise/Books/x.md")
    (vault / "dangling.md").symlink_to(outside / "new.md")
    with pytest.raises(UnsafePathError, match=r"dangling\.md"):
        resolve_inside(vault, "dangling.md")


def test_resolve_inside_allows_links_within_and_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert resolve_inside(tmp_path, "alias/x.md") == tmp_path.resolve() / "alias" / "x.md"
    assert resolve_inside(tmp_path, "not/yet/there.md") == tmp_path / "not/yet/there.md"
    assert resolve_inside(tmp_path, "") == tmp_path.resolve()


def test_resolve_inside_missing_vault_is_a_vault_error(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="not accessible"):
        resolve_inside(tmp_path / "unmounted", "x.md")


# --- atomic_write ------------------------------------------------------------------------------


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".syncd-*"))


def test_atomic_write_creates_folders_and_writes_bytes_verbatim(tmp_path: Path) -> None:
    text = "title:: X\r\n- a\n\t- b\r\u2028é\n"
    atomic_write(tmp_path / "Readwise" / "Books" / "X.md", text, vault_root=tmp_path)
    written = tmp_path / "Readwise" / "Books" / "X.md"
    assert written.read_bytes() == text.encode("utf-8")
    assert read_text_if_exists(written) == text
    assert leftovers(tmp_path) == []


def test_atomic_write_accepts_a_relative_path(tmp_path: Path) -> None:
    atomic_write(Path("pages/a.md"), "x", vault_root=tmp_path)
    assert (tmp_path / "pages" / "a.md").read_text() == "x"


def test_atomic_write_uses_umask_for_new_files_and_keeps_existing_mode(tmp_path: Path) -> None:
    old_umask = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.md", "x", vault_root=tmp_path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "new.md").stat().st_mode) == 0o640

    existing = tmp_path / "old.md"
    existing.write_text("old")
    existing.chmod(0o604)
    atomic_write(existing, "new", vault_root=tmp_path)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o604
    assert existing.read_text() == "new"


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_atomic_write_failure_keeps_old_content_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "book.md"
    target.write_text("old content")

    def boom(*_args: object) -> None:
        raise OSError(errno.EIO, "injected failure")

    monkeypatch.setattr(f"syncd.adapters._fs.os.{failing}", boom)
    with pytest.raises(OSError, match="injected failure"):
        atomic_write(target, "new content", vault_root=tmp_path)
    monkeypatch.undo()
    assert target.read_text() == "old content"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("code", "reason"),
    [(errno.ENOSPC, "No space"), (errno.EROFS, "Read-only"), (errno.EACCES, "Permission")],
)
def test_atomic_write_maps_vault_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, reason: str
) -> None:
    target = tmp_path / "book.md"
    target.write_text("old")

    def fail(*_args: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("syncd.adapters._fs.os.fsync", fail)
    with pytest.raises(VaultError, match=reason) as caught:
        atomic_write(target, "new", vault_root=tmp_path)
    monkeypatch.undo()
    assert str(target.resolve()) in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.exit_code == 5
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_atomic_write_refuses_symlink_escapes(tmp_path: Path) -> None:
    vault, outside = tmp_path / "vault", tmp_path / "outside"
    vault.mkdir()
    outside.mkdir()
    secret = outside / "secret.md"
    secret.write_text("keep me")
    (vault / "link.md").symlink_to(secret)
    (vault / "dir").symlink_to(outside)

    for relative in ("link.md", "dir/new.md", "dir/sub/new.md", "../outside/x.md"):
        with pytest.raises(UnsafePathError):
            atomic_write(vault / relative, "pwned", vault_root=vault)
    with pytest.raises(UnsafePathError, match="not under the vault"):
        atomic_write(outside / "x.md", "pwned", vault_root=vault)
    assert secret.read_text() == "keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.md"]
    assert leftovers(tmp_path) == []


def test_atomic_write_through_a_link_inside_the_vault_keeps_the_link(tmp_path: Path) -> None:
    (tmp_path / "real.md").write_text("old")
    (tmp_path / "alias.md").symlink_to(tmp_path / "real.md")
    atomic_write(tmp_path / "alias.md", "new", vault_root=tmp_path)
    assert (tmp_path / "alias.md").is_symlink()
    assert (tmp_path / "real.md").read_text() == "new"


def test_atomic_write_refuses_a_folder_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "book.md").mkdir()
    with pytest.raises(VaultError, match="folder"):
        atomic_write(tmp_path / "book.md", "x", vault_root=tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnsafePathError, match="not a folder"):
        atomic_write(tmp_path / "file" / "book.md", "x", vault_root=tmp_path)


def test_atomic_write_rejects_unencodable_text_before_touching_disk(tmp_path: Path) -> None:
    with pytest.raises(UnicodeEncodeError):
        atomic_write(tmp_path / "sub" / "x.md", "\ud800", vault_root=tmp_path)
    assert list(tmp_path.iterdir()) == []


@given(text=st.text(st.characters(codec="utf-8")))
@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_atomic_write_round_trips_any_text(tmp_path: Path, text: str) -> None:
    atomic_write(tmp_path / "x.md", text, vault_root=tmp_path)
    assert read_text_if_exists(tmp_path / "x.md") == text


# --- reads and clean-up ------------------------------------------------------------------------


def test_read_text_if_exists(tmp_path: Path) -> None:
    assert read_text_if_exists(tmp_path / "missing.md") is None
    (tmp_path / "bad.md").write_bytes(b"ok\xff")
    with pytest.raises(VaultError, match=r"bad\.md is not valid UTF-8 \(byte 2\)"):
        read_text_if_exists(tmp_path / "bad.md")
    (tmp_path / "bom.md").write_bytes(b"\xef\xbb\xbfa\r\nb")
    assert read_text_if_exists(tmp_path / "bom.md") == "\ufeffa\r\nb"


def test_cleanup_temp_files_removes_only_our_leftovers(tmp_path: Path) -> None:
    ours = ".syncd-0123456789abcdef.tmp"
    (tmp_path / ours).write_text("partial")
    (tmp_path / ".syncd-notes.tmp").write_text("a user's file")
    (tmp_path / "note.md").write_text("x")
    (tmp_path / "Books").mkdir()
    (tmp_path / "Books" / ours).write_text("partial")
    (tmp_path / ".obsidian").mkdir()
    (tmp_path / ".obsidian" / ours).write_text("not ours to judge")

    assert cleanup_temp_files(tmp_path) == 1
    assert (tmp_path / "Books" / ours).exists()
    assert cleanup_temp_files(tmp_path, recursive=True) == 1
    assert not (tmp_path / "Books" / ours).exists()
    assert (tmp_path / ".syncd-notes.tmp").exists() and (tmp_path / "note.md").exists()
    assert (tmp_path / ".obsidian" / ours).exists()
    assert cleanup_temp_files(tmp_path / "missing") == 0


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=60))
def test_clean_chars_plain_ascii_fast_path_matches_the_per_character_rule(text: str) -> None:
    forbidden = frozenset('/\\:*?"<>|#^[]')
    by_rule = "".join(
        " " if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") else c
        for c in text
        if c not in forbidden
    )
    assert _clean_chars(text, forbidden) == by_rule
