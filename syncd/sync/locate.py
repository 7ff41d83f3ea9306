"""Find pages that are not where the state store says: a page Readwise's own plugin wrote for a
book syncd has not written yet (to adopt it), and a page the user moved or renamed.

Both look only at Markdown files syncd does not own, and only when asked: a pass with no new
book and no missing page never walks the vault.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from urllib.parse import unquote

import structlog

from syncd.errors import VaultError
from syncd.model import Book
from syncd.sync.state import PageRow, text_hash

ListFiles = Callable[[], Iterable[str]]  # every .md file of the target, relative paths
ReadFile = Callable[[str], str | None]

log = structlog.get_logger("syncd.locate")

_LOGSEQ_TITLE = re.compile(r"^title::[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_FRONT_TITLE = re.compile(r"\A---\n(?:.*\n)*?title:[ \t]*(.+?)[ \t]*\n(?:.*\n)*?---", re.MULTILINE)
_H1 = re.compile(r"^#[ \t]+(.+?)[ \t]*$", re.MULTILINE)
# The document's own title where the page title is a custom one (`Readwise/{{title}}`,
# `Document/{{title}}`, `{{title}} by {{author}} Highlights`): Logseq `full-title::`, old
# `- Full Title::` blocks, Obsidian `- Full Title:` metadata, a callout's `>Title::` field.
_FULL_TITLE = re.compile(
    r'^(?:full-title::|(?:- |#{1,6} )?Full Title::?|>[ \t]*Title::)[ \t]*"?(.+?)"?[ \t]*$',
    re.MULTILINE,
)
# Readwise's companion pages hold a document's full text, not its highlights.
_FULL_DOCUMENT_FOLDER = "Full Document Contents/"
_DROPPED = re.compile(r"[\s:?\"*<>|#^\[\]/\\]+")


def title_key(title: str) -> str:
    """Two titles that Readwise, Obsidian or Logseq may have spelled differently compare equal."""
    title = unicodedata.normalize("NFC", title).casefold().strip()
    title = title.removesuffix(" (highlights)")
    title = title.replace("___", "/")
    return _DROPPED.sub("", title)


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return unquote(name.removesuffix(".md"))


def page_titles(path: str, text: str) -> set[str]:
    """Every title a page may be known by: title property, front matter, H1, file name."""
    head = text[:4000]
    keys = {title_key(_stem(path))}
    for pattern in (_LOGSEQ_TITLE, _FRONT_TITLE, _H1, _FULL_TITLE):
        match = pattern.search(head)
        if match:
            keys.add(title_key(match[1]))
    keys.discard("")
    return keys


class OwnedPaths:
    """The paths of a target's pages, read from the state on first use: a pass that only
    updates existing pages never needs them, and a big library has thousands."""

    def __init__(self, read: Callable[[], Iterable[str]]) -> None:
        self._read = read
        self._paths: frozenset[str] | None = None

    def paths(self) -> frozenset[str]:
        if self._paths is None:
            self._paths = frozenset(self._read())
        return self._paths


class VaultIndex:
    """Built lazily, once per pass and target, over the files syncd does not own."""

    def __init__(self, list_files: ListFiles, read_file: ReadFile, owned: OwnedPaths) -> None:
        self._list_files = list_files
        self._read = read_file
        self._owned = owned
        self._texts: dict[str, str] | None = None
        self._by_title: dict[str, list[str]] = {}
        self._by_hash: dict[str, list[str]] = {}
        self._claimed: dict[str, int] = {}  # path -> the book whose page it was found to be

    def _build(self) -> dict[str, str]:
        if self._texts is None:
            self._texts = {}
            owned = self._owned.paths()
            for path in self._list_files():
                if path in owned or _FULL_DOCUMENT_FOLDER in f"/{path}":
                    continue
                try:
                    text = self._read(path)
                except VaultError as error:
                    # A note syncd cannot read (not UTF-8, no permission, linked out of the
                    # vault) is no page to adopt or follow; the book looked up goes on.
                    log.warning("vault.file_skipped", path=path, error=str(error))
                    continue
                if text is None:
                    continue
                self._texts[path] = text
                for key in page_titles(path, text):
                    self._by_title.setdefault(key, []).append(path)
                self._by_hash.setdefault(text_hash(text), []).append(path)
        return self._texts

    def _take(self, path: str, book_id: int) -> bool:
        """Claim `path` for this book. A book may find its own path again (a re-plan after the
        person saved the file mid-pass); a path another book claimed is not free."""
        return self._claimed.setdefault(path, book_id) == book_id

    def find_existing(self, book: Book, desired: str) -> tuple[str, str] | None:
        """A page someone else wrote for this book: at the path syncd would use, or titled so."""
        texts = self._build()
        candidates = [desired] if desired in texts else []
        for title in (book.display_title, book.title):
            candidates += self._by_title.get(title_key(title), [])
        for path in candidates:
            if self._take(path, book.id):
                return path, texts[path]
        return None

    def find_moved(self, page: PageRow, book: Book) -> str | None:
        """Where a page went: a file with the text syncd (or the watcher) last saw, else one
        that nobody else owns with one of its titles: the page's own, the heading syncd last
        wrote in it, or the book's current title."""
        self._build()
        for wanted in (page.written_hash,):
            for path in self._by_hash.get(wanted or "", []):
                if self._take(path, page.book_id):
                    return path
        titles = {title_key(t) for t in (page.page_title, book.display_title, book.title)}
        if page.written_text is not None:
            titles |= page_titles(page.path, page.written_text)  # the heading it last wrote
        for key in sorted(titles):
            for path in self._by_title.get(key, []):
                if self._take(path, page.book_id):
                    return path
        return None
