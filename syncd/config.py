"""The TOML config file → frozen dataclasses.

Every key the loader accepts is declared once, in `SCHEMA` (name, parser, default). Loading reads
the whole file against it and collects every problem (unknown keys with a suggestion, wrong
types, bad values, missing vaults, overlapping targets) before raising one ConfigError, so a user
fixes the file in one go. Each message names the file and the key path, e.g.
`/home/me/.config/syncd/config.toml: targets[1].format: must be one of "obsidian", "logseq"`.

Paths (`vault`, `token_file`, `state.dir`) expand `~` and `$VAR`/`${VAR}` (`$$` is a literal `$`);
relative paths are taken from the config file's own folder, so a config works from any cwd.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

import platformdirs

from syncd.errors import ConfigError
from syncd.model import fold_tag

TargetFormat = Literal["obsidian", "logseq"]
SourceKind = Literal["kindle_clippings", "koreader"]
Layout = Literal["append", "rewrite"]
DeletePolicy = Literal["remove", "keep"]

TARGET_FORMATS: tuple[TargetFormat, ...] = ("obsidian", "logseq")
LAYOUTS: tuple[Layout, ...] = ("append", "rewrite")
DELETE_POLICIES: tuple[DeletePolicy, ...] = ("remove", "keep")
# The v2 API's documented categories (api.md §6); a typo here would silently sync nothing.
CATEGORIES = ("books", "articles", "tweets", "podcasts", "supplementals")
SOURCE_KINDS: tuple[SourceKind, ...] = ("kindle_clippings", "koreader")
READWISE_SOURCE = "readwise"  # the API, in a target's `sources`

DEFAULT_BASE_URL = "https://readwise.io"
DEFAULT_TOKEN_ENV = "READWISE_TOKEN"
CONFIG_ENV = "SYNCD_CONFIG"
# systemd's LoadCredential=readwise-token:... puts the file in $CREDENTIALS_DIRECTORY.
CREDENTIAL_NAME = "readwise-token"


@dataclass(frozen=True)
class ReadwiseConfig:
    token_env: str | None = DEFAULT_TOKEN_ENV
    token_file: Path | None = None
    token: str | None = field(default=None, repr=False)  # never in repr, logs or errors
    base_url: str = DEFAULT_BASE_URL
    max_attempts: int = 8
    timeout: float = 30.0
    backoff_max: float = 60.0
    overlap_seconds: float = 300.0


@dataclass(frozen=True)
class StateConfig:
    dir: Path


@dataclass(frozen=True)
class DaemonConfig:
    poll_interval: float = 300.0
    full_reconcile_interval: float = 86400.0


@dataclass(frozen=True)
class TargetConfig:
    name: str
    format: TargetFormat
    vault: Path  # absolute and resolved
    # Obsidian: the folder under the vault holding <Category>/<Title>.md. Logseq: "" (pages/
    # and journals/ live at the graph root).
    folder: str
    categories: frozenset[str] | None  # None: every category
    block_ids: bool = False
    layout: Layout = "append"
    on_upstream_delete: DeletePolicy = "remove"
    resync_deleted: bool = False
    rename_on_title_change: bool = False
    journal_format: str | None = None  # overrides logseq/config.edn's :journal/page-title-format
    enabled: bool = True
    # Names of the [[sources]] (and "readwise") this target gets; None: every one.
    sources: frozenset[str] | None = None
    templates: Path | None = None  # a folder of Readwise templates; None: the defaults
    group_by_category: bool = True  # Obsidian: <folder>/<Category>/<file>.md
    only_tags: frozenset[str] = frozenset()  # document tags, folded (no "#", casefolded)
    skip_tags: frozenset[str] = frozenset()
    write_back: frozenset[str] = frozenset()  # fields sent back to Readwise: note, tags, text

    @property
    def root(self) -> Path:
        """The folder this target owns: no other target may write in or under it."""
        return self.vault / self.folder if self.folder else self.vault


@dataclass(frozen=True)
class SourceConfig:
    """A device file or folder read on every pass (see syncd.sources.local_pass)."""

    name: str
    kind: SourceKind
    path: Path  # absolute; may be missing (a device not plugged in)


@dataclass(frozen=True)
class Config:
    path: Path
    readwise: ReadwiseConfig
    state: StateConfig
    daemon: DaemonConfig
    targets: tuple[TargetConfig, ...]
    sources: tuple[SourceConfig, ...] = ()

    @property
    def uses_readwise(self) -> bool:
        """Whether any enabled target gets Readwise's highlights (and so needs a token)."""
        return any(
            t.enabled and (t.sources is None or READWISE_SOURCE in t.sources) for t in self.targets
        )


# ---------------------------------------------------------------------------------------------
# The schema: every accepted key, its parser and its default.

T = TypeVar("T")
S = TypeVar("S", bound=str)


class _Invalid(Exception):
    """A value the parser rejects; the message says what is expected."""

    def __init__(self, message: str, *, show_value: bool = True) -> None:
        super().__init__(message)
        self.show_value = show_value  # False when the message already says what was wrong


@dataclass(frozen=True)
class _Context:
    base_dir: Path  # the config file's folder, for relative paths
    environ: Mapping[str, str]


@dataclass(frozen=True)
class Key(Generic[T]):
    name: str
    parse: Callable[[object, _Context], T]
    # Used when the key is absent; after a problem, a stand-in so loading can carry on.
    default: T
    required: bool = False
    secret: bool = False  # its value is never echoed in a message


@dataclass(frozen=True)
class Section:
    keys: tuple[Key[Any], ...]
    is_array: bool = False  # [[targets]] rather than [readwise]

    def names(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string(value: object, _ctx: _Context) -> str:
    if isinstance(value, str) and not value.strip():
        # "got a string" would be no help: say what is wrong with it.
        raise _Invalid("must be a non-empty string, got an empty string", show_value=False)
    if not isinstance(value, str):
        raise _Invalid("must be a non-empty string")
    return value


def _optional_string(value: object, ctx: _Context) -> str | None:
    return _string(value, ctx)


def _name(value: object, ctx: _Context) -> str:
    text = _string(value, ctx)
    if text != text.strip() or any(not char.isprintable() for char in text):
        raise _Invalid("must be a name without surrounding spaces or control characters")
    return text


def _secret(value: object, ctx: _Context) -> str | None:
    return _string(value, ctx).strip()


def _bool(value: object, _ctx: _Context) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("must be true or false")
    return value


def _one_of(*options: S) -> Callable[[object, _Context], S]:
    def parse(value: object, _ctx: _Context) -> S:
        if isinstance(value, str) and value in options:
            return options[options.index(value)]
        raise _Invalid("must be one of " + ", ".join(f'"{option}"' for option in options))

    return parse


def _attempts(value: object, _ctx: _Context) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _Invalid("must be a whole number, at least 1")
    return value


def _seconds(*, allow_zero: bool) -> Callable[[object, _Context], float]:
    expected = "a number of seconds, 0 or more" if allow_zero else "a number of seconds above 0"

    def parse(value: object, _ctx: _Context) -> float:
        if not _is_number(value):
            raise _Invalid(f"must be {expected}")
        seconds = float(value)  # type: ignore[arg-type]  # _is_number checked int | float
        if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
            raise _Invalid(f"must be {expected}")
        return seconds

    return parse


_DURATION = re.compile(r"(?:\d+(?:\.\d+)?\s*[smhd]\s*)+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_positive_seconds = _seconds(allow_zero=False)


def _duration(value: object, ctx: _Context) -> float:
    """Seconds as a number, or a string like "90s", "5m", "1h30m", "2d"."""
    expected = 'must be a number of seconds or a duration like "90s", "5m", "1h30m" (above 0)'
    if isinstance(value, str):
        text = value.strip().lower()
        if not _DURATION.fullmatch(text):
            raise _Invalid(expected)
        value = sum(
            float(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION_PART.findall(text)
        )
    try:
        return _positive_seconds(value, ctx)
    except _Invalid:
        raise _Invalid(expected) from None


def _base_url(value: object, _ctx: _Context) -> str:
    expected = 'must be an http:// or https:// URL, like "https://readwise.io"'
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(expected)
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Invalid(expected)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise _Invalid(expected + ", without user, password, query or fragment")
    return text.rstrip("/")


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: object, _ctx: _Context) -> str | None:
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise _Invalid('must be an environment variable name, like "READWISE_TOKEN"')
    return value


_VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def _expand(text: str, ctx: _Context) -> Path:
    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name = match["braced"] if match["braced"] is not None else match["plain"]
        if name not in ctx.environ:
            raise _Invalid(
                f"uses ${{{name}}}, which is not set in the environment", show_value=False
            )
        return ctx.environ[name]

    expanded = _VARIABLE.sub(substitute, text)
    if expanded == "~" or expanded.startswith("~/"):
        home = ctx.environ.get("HOME") or str(Path.home())
        expanded = home + expanded[1:]
    elif expanded.startswith("~"):
        expanded = os.path.expanduser(expanded)  # ~user/...
    path = Path(expanded)
    return (path if path.is_absolute() else ctx.base_dir / path).resolve()


def _path(value: object, ctx: _Context) -> Path:
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise _Invalid("must be a non-empty path string")
    return _expand(value, ctx)


def _optional_path(value: object, ctx: _Context) -> Path | None:
    return _path(value, ctx)


def _folder(value: object, _ctx: _Context) -> str:
    expected = 'must be a folder inside the vault, like "Readwise" or "Sources/Readwise"'
    if not isinstance(value, str) or not value.strip() or "\\" in value or "\0" in value:
        raise _Invalid(expected)
    folder = PurePosixPath(value.strip())
    if folder.is_absolute() or ".." in folder.parts or folder == PurePosixPath("."):
        raise _Invalid(expected)
    if any(part.startswith(".") for part in folder.parts):
        raise _Invalid(expected + " (not a hidden one: Obsidian ignores folders starting '.')")
    return folder.as_posix()


def _source_names(value: object, _ctx: _Context) -> frozenset[str] | None:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _Invalid(
            'must be a non-empty list of source names: "readwise" and names of [[sources]] '
            "(omit it for every source)"
        )
    return frozenset(value)


def _tags(value: object, _ctx: _Context) -> frozenset[str]:
    expected = 'must be a list of document tags, e.g. ["favorite", "#to-read"]'
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Invalid(expected)
    folded = [fold_tag(str(item)) for item in value]
    if any(not tag for tag in folded):
        raise _Invalid(expected + " (no empty tags)")
    return frozenset(folded)


WRITE_BACK_FIELDS = ("note", "tags", "text")


def _refuse_unknown(items: list[object], known: tuple[str, ...], what: str) -> None:
    """Every item not in `known` named, with a did-you-mean, and the known names listed."""
    unknown = [item for item in items if item not in known]
    if unknown:
        listed = ", ".join(f'"{name}"' for name in known)
        raise _Invalid(
            f"has unknown {what} "
            + ", ".join(_describe(item, secret=False) + _suggest(item, known) for item in unknown)
            + f"; known: {listed}",
            show_value=False,
        )


def _write_back(value: object, _ctx: _Context) -> frozenset[str]:
    known = ", ".join(f'"{name}"' for name in WRITE_BACK_FIELDS)
    if not isinstance(value, list):
        raise _Invalid(f"must be a list of fields from {known} (or [] to send nothing)")
    _refuse_unknown(value, WRITE_BACK_FIELDS, "fields")
    return frozenset(str(item) for item in value)


def _categories(value: object, _ctx: _Context) -> frozenset[str] | None:
    known = ", ".join(f'"{name}"' for name in CATEGORIES)
    if not isinstance(value, list) or not value:
        raise _Invalid(f"must be a non-empty list of categories from {known} (omit it for all)")
    _refuse_unknown(value, CATEGORIES, "categories")
    return frozenset(str(item) for item in value)


TOKEN_ENV: Key[str | None] = Key("token_env", _env_name, DEFAULT_TOKEN_ENV)
TOKEN_FILE = Key("token_file", _optional_path, None)
TOKEN = Key("token", _secret, None, secret=True)
BASE_URL = Key("base_url", _base_url, DEFAULT_BASE_URL)
MAX_ATTEMPTS = Key("max_attempts", _attempts, 8)
TIMEOUT = Key("timeout", _seconds(allow_zero=False), 30.0)
BACKOFF_MAX = Key("backoff_max", _seconds(allow_zero=False), 60.0)
OVERLAP_SECONDS = Key("overlap_seconds", _seconds(allow_zero=True), 300.0)

STATE_DIR = Key("dir", _optional_path, None)

POLL_INTERVAL = Key("poll_interval", _duration, 300.0)
FULL_RECONCILE_INTERVAL = Key("full_reconcile_interval", _duration, 86400.0)

NAME = Key("name", _name, "", required=True)
FORMAT: Key[TargetFormat] = Key("format", _one_of(*TARGET_FORMATS), "obsidian", required=True)
VAULT = Key("vault", _path, Path(), required=True)
FOLDER = Key("folder", _folder, "Readwise")
CATEGORIES_KEY = Key("categories", _categories, None)
BLOCK_IDS = Key("block_ids", _bool, False)
LAYOUT: Key[Layout] = Key("layout", _one_of(*LAYOUTS), "append")
ON_UPSTREAM_DELETE: Key[DeletePolicy] = Key(
    "on_upstream_delete", _one_of(*DELETE_POLICIES), "remove"
)
RESYNC_DELETED = Key("resync_deleted", _bool, False)
RENAME_ON_TITLE_CHANGE = Key("rename_on_title_change", _bool, False)
JOURNAL_FORMAT = Key("journal_format", _optional_string, None)
ENABLED = Key("enabled", _bool, True)
TARGET_SOURCES = Key("sources", _source_names, None)

SOURCE_KIND: Key[SourceKind] = Key(
    "kind", _one_of(*SOURCE_KINDS), "kindle_clippings", required=True
)
SOURCE_PATH = Key("path", _path, Path(), required=True)
TEMPLATES = Key("templates", _optional_path, None)
GROUP_BY_CATEGORY = Key("group_by_category", _bool, True)
ONLY_TAGS: Key[frozenset[str]] = Key("only_tags", _tags, frozenset())
SKIP_TAGS: Key[frozenset[str]] = Key("skip_tags", _tags, frozenset())
WRITE_BACK: Key[frozenset[str]] = Key("write_back", _write_back, frozenset())

SCHEMA: Mapping[str, Section] = {
    "readwise": Section(
        (
            TOKEN_ENV,
            TOKEN_FILE,
            TOKEN,
            BASE_URL,
            MAX_ATTEMPTS,
            TIMEOUT,
            BACKOFF_MAX,
            OVERLAP_SECONDS,
        )
    ),
    "state": Section((STATE_DIR,)),
    "daemon": Section((POLL_INTERVAL, FULL_RECONCILE_INTERVAL)),
    "targets": Section(
        (
            NAME,
            FORMAT,
            VAULT,
            FOLDER,
            CATEGORIES_KEY,
            BLOCK_IDS,
            LAYOUT,
            ON_UPSTREAM_DELETE,
            RESYNC_DELETED,
            RENAME_ON_TITLE_CHANGE,
            JOURNAL_FORMAT,
            ENABLED,
            TARGET_SOURCES,
            TEMPLATES,
            GROUP_BY_CATEGORY,
            ONLY_TAGS,
            SKIP_TAGS,
            WRITE_BACK,
        ),
        is_array=True,
    ),
    "sources": Section((NAME, SOURCE_KIND, SOURCE_PATH), is_array=True),
}


# ---------------------------------------------------------------------------------------------
# Reading tables against the schema, collecting problems.


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _describe(value: object, *, secret: bool) -> str:
    """A short, TOML-flavoured rendering of a value for messages (only the type if secret)."""
    if secret or isinstance(value, list | dict):
        return _kind(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def _suggest(name: object, known: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


class _Problems:
    def __init__(self, file: Path) -> None:
        self.file = file
        self.messages: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.messages.append(f"{self.file}: {where}: {message}")


class _Table:
    """One TOML table read against its section's keys; remembers which keys were bad."""

    def __init__(
        self,
        data: Mapping[str, object],
        where: str,
        section: Section,
        ctx: _Context,
        problems: _Problems,
    ) -> None:
        self.data = data
        self.where = where
        self.ctx = ctx
        self.problems = problems
        self.bad: set[str] = set()
        known = section.names()
        for name in data:
            if name not in known:
                problems.add(f"{where}.{name}", "unknown key" + _suggest(name, known))

    def get(self, key: Key[T]) -> T:
        if key.name not in self.data:
            if key.required:
                self.problem(key, "is required but missing")
            return key.default
        value = self.data[key.name]
        try:
            return key.parse(value, self.ctx)
        except _Invalid as exc:
            shown = f", got {_describe(value, secret=key.secret)}" if exc.show_value else ""
            self.problem(key, f"{exc}{shown}")
            return key.default

    def given(self, key: Key[Any]) -> bool:
        return key.name in self.data

    def ok(self, *keys: Key[Any]) -> bool:
        return not any(key.name in self.bad for key in keys)

    def problem(self, key: Key[Any], message: str) -> None:
        self.bad.add(key.name)
        self.problems.add(f"{self.where}.{key.name}", message)


def _build_readwise(table: _Table) -> ReadwiseConfig:
    return ReadwiseConfig(
        token_env=table.get(TOKEN_ENV),
        token_file=table.get(TOKEN_FILE),
        token=table.get(TOKEN),
        base_url=table.get(BASE_URL),
        max_attempts=table.get(MAX_ATTEMPTS),
        timeout=table.get(TIMEOUT),
        backoff_max=table.get(BACKOFF_MAX),
        overlap_seconds=table.get(OVERLAP_SECONDS),
    )


def _build_state(table: _Table) -> StateConfig:
    return StateConfig(dir=table.get(STATE_DIR) or Path(platformdirs.user_state_dir("syncd")))


def _build_daemon(table: _Table) -> DaemonConfig:
    return DaemonConfig(
        poll_interval=table.get(POLL_INTERVAL),
        full_reconcile_interval=table.get(FULL_RECONCILE_INTERVAL),
    )


def _build_target(table: _Table) -> TargetConfig:
    target_format = table.get(FORMAT)
    folder = table.get(FOLDER)
    journal_format = table.get(JOURNAL_FORMAT)
    if table.ok(FORMAT) and target_format == "logseq":
        if table.given(FOLDER):
            table.problem(
                FOLDER, 'applies only to format "obsidian": a Logseq graph keeps pages in pages/'
            )
        folder = ""
    if table.ok(FORMAT) and target_format == "obsidian" and table.given(JOURNAL_FORMAT):
        table.problem(JOURNAL_FORMAT, 'applies only to format "logseq"')
    if table.ok(FORMAT) and target_format == "logseq" and table.given(GROUP_BY_CATEGORY):
        table.problem(
            GROUP_BY_CATEGORY, 'applies only to format "obsidian": Logseq keeps pages in pages/'
        )
    only_tags, skip_tags = table.get(ONLY_TAGS), table.get(SKIP_TAGS)
    both = sorted(only_tags & skip_tags)
    if both:
        table.problem(SKIP_TAGS, f"names {', '.join(both)}, which only_tags names too")
    return TargetConfig(
        name=table.get(NAME),
        format=target_format,
        vault=table.get(VAULT),
        folder=folder,
        categories=table.get(CATEGORIES_KEY),
        block_ids=table.get(BLOCK_IDS),
        layout=table.get(LAYOUT),
        on_upstream_delete=table.get(ON_UPSTREAM_DELETE),
        resync_deleted=table.get(RESYNC_DELETED),
        rename_on_title_change=table.get(RENAME_ON_TITLE_CHANGE),
        journal_format=journal_format,
        enabled=table.get(ENABLED),
        sources=table.get(TARGET_SOURCES),
        templates=table.get(TEMPLATES),
        group_by_category=table.get(GROUP_BY_CATEGORY),
        only_tags=only_tags,
        skip_tags=skip_tags,
        write_back=table.get(WRITE_BACK),
    )


def _build_source(table: _Table) -> SourceConfig:
    return SourceConfig(
        name=table.get(NAME), kind=table.get(SOURCE_KIND), path=table.get(SOURCE_PATH)
    )


def _check_sources(
    sources: list[tuple[_Table, SourceConfig]],
    targets: list[tuple[_Table, TargetConfig]],
    problems: _Problems,
    *,
    readwise_given: bool,
) -> list[TargetConfig]:
    """Unique source names; each target's `sources` names known ones. Returns the targets with
    `sources` spelled out: by default every [[sources]] table, and "readwise" unless the config
    has [[sources]] but no [readwise] (then no token is needed)."""
    names: dict[str, str] = {}
    for table, source in sources:
        if not table.ok(NAME) or not source.name:
            continue
        if source.name.casefold() == READWISE_SOURCE:
            table.problem(NAME, '"readwise" is the Readwise API\'s name; choose another')
            continue
        earlier = names.setdefault(source.name.casefold(), table.where)
        if earlier != table.where:
            table.problem(NAME, f'"{source.name}" is already the name of {earlier}')
    known = [READWISE_SOURCE, *(source.name for _table, source in sources)]
    default = frozenset(known if readwise_given or not sources else known[1:])
    resolved: list[TargetConfig] = []
    for table, target in targets:
        chosen = target.sources
        if chosen is None:
            chosen = default
        else:
            unknown = sorted(name for name in chosen if name not in known)
            if unknown:
                table.problem(
                    TARGET_SOURCES,
                    "names no such source: "
                    + ", ".join(f'"{name}"' + _suggest(name, known) for name in unknown)
                    + "; known: "
                    + ", ".join(f'"{name}"' for name in known),
                )
        resolved.append(replace(target, sources=chosen))
    return resolved


def _check_targets(
    targets: list[tuple[_Table, TargetConfig]], problems: _Problems, *, check_vaults: bool
) -> None:
    """Rules across targets: unique names, vaults that exist, and each target a vault (or
    graph) of its own, side by side: an Obsidian target looks for moved and adopted notes in
    its whole vault, so another target's pages anywhere in it would be taken for its own."""
    if not targets:
        problems.add("targets", "no targets: add at least one [[targets]] with name, format, vault")
    names: dict[str, str] = {}
    roots: list[tuple[str, Path]] = []
    vaults: list[tuple[str, Path]] = []
    for table, target in targets:
        if table.ok(NAME) and target.name:
            earlier = names.setdefault(target.name.casefold(), table.where)
            if earlier != table.where:
                table.problem(NAME, f'"{target.name}" is already the name of {earlier}')
        if not table.ok(VAULT, FORMAT, FOLDER) or not table.given(VAULT):
            continue
        if check_vaults and not target.vault.is_dir():
            why = "is not a folder" if target.vault.exists() else "does not exist (unmounted?)"
            table.problem(VAULT, f"{target.vault} {why}")
        for earlier_where, earlier_root in roots:
            if target.root == earlier_root:
                table.problem(VAULT, f"writes into {target.root}, as {earlier_where} already does")
            elif target.root.is_relative_to(earlier_root) or earlier_root.is_relative_to(
                target.root
            ):
                table.problem(
                    VAULT,
                    f"its folder {target.root} and {earlier_where}'s folder {earlier_root} "
                    "are inside one another",
                )
        for earlier_where, earlier_vault in vaults:
            if table.ok(VAULT):  # one problem per key: the first says enough
                _check_vaults_apart(table, target.vault, earlier_where, earlier_vault)
        roots.append((table.where, target.root))
        vaults.append((table.where, target.vault))


def _check_vaults_apart(table: _Table, vault: Path, earlier_where: str, earlier: Path) -> None:
    if vault == earlier:
        how = f"is also {earlier_where}'s vault"
    elif vault.is_relative_to(earlier) or earlier.is_relative_to(vault):
        how = f"and {earlier_where}'s vault {earlier} are inside one another"
    else:
        return
    table.problem(
        VAULT,
        f"{vault} {how}: each target needs a vault or graph of its own, side by side"
        " (such as ~/Notes/vault and ~/Notes/graph)",
    )


# ---------------------------------------------------------------------------------------------
# Public entry points


def default_config_path() -> Path:
    """The platform's user config dir / "syncd" / "config.toml"."""
    return Path(platformdirs.user_config_dir("syncd")) / "config.toml"


def find_config_path(cli_value: str | None, environ: Mapping[str, str]) -> Path:
    """`--config`, else $SYNCD_CONFIG, else the platform default; absolute."""
    chosen = cli_value or environ.get(CONFIG_ENV) or None
    if chosen is None:
        return default_config_path()
    if chosen == "~" or chosen.startswith("~/"):
        chosen = (environ.get("HOME") or str(Path.home())) + chosen[1:]
    return Path(os.path.expanduser(chosen)).absolute()


_TOML_POSITION = re.compile(r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{path}: no config file here; copy config/syncd.example.toml to it, "
                f"or pass --config PATH or set ${CONFIG_ENV}"
            ]
        ) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a folder, not a config file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file: {exc.strerror}"]) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not valid UTF-8 (byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POSITION.match(str(exc))
        if match is None:
            raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
        raise ConfigError(
            [
                f"{path}: line {match['line']}, column {match['column']}: "
                f"invalid TOML: {match['message']}"
            ]
        ) from None


def load_config(
    path: Path, *, environ: Mapping[str, str] | None = None, check_vaults: bool = True
) -> Config:
    """Read and check the config file; raise one ConfigError listing every problem."""
    path = path.absolute()
    env = os.environ if environ is None else environ
    data = _read_toml(path)
    problems = _Problems(path)
    ctx = _Context(base_dir=path.parent, environ=env)
    known_sections = list(SCHEMA)

    tables: dict[str, Mapping[str, object]] = {}
    arrays: dict[str, list[Mapping[str, object]]] = {}
    malformed: set[str] = set()
    for name, value in data.items():
        section = SCHEMA.get(name)
        if section is None:
            problems.add(name, "unknown section" + _suggest(name, known_sections))
        elif section.is_array:
            if isinstance(value, list) and all(isinstance(item, dict) for item in value):
                arrays[name] = value
            else:
                malformed.add(name)
                problems.add(name, f"must be an array of tables, written [[{name}]]")
        elif isinstance(value, dict):
            tables[name] = value
        else:
            problems.add(name, f"must be a table, written [{name}]")

    def table(name: str) -> _Table:
        return _Table(tables.get(name, {}), name, SCHEMA[name], ctx, problems)

    readwise = _build_readwise(table("readwise"))
    state = _build_state(table("state"))
    daemon = _build_daemon(table("daemon"))
    targets: list[tuple[_Table, TargetConfig]] = []
    for index, item in enumerate(arrays.get("targets", [])):
        target_table = _Table(item, f"targets[{index}]", SCHEMA["targets"], ctx, problems)
        targets.append((target_table, _build_target(target_table)))
    if "targets" not in malformed:
        _check_targets(targets, problems, check_vaults=check_vaults)
    sources: list[tuple[_Table, SourceConfig]] = []
    for index, item in enumerate(arrays.get("sources", [])):
        source_table = _Table(item, f"sources[{index}]", SCHEMA["sources"], ctx, problems)
        sources.append((source_table, _build_source(source_table)))
    resolved = _check_sources(sources, targets, problems, readwise_given="readwise" in tables)

    if problems.messages:
        raise ConfigError(problems.messages)
    return Config(
        path=path,
        readwise=readwise,
        state=state,
        daemon=daemon,
        targets=tuple(resolved),
        sources=tuple(source for _, source in sources),
    )


# ---------------------------------------------------------------------------------------------
# The token


def _token_from_file(path: Path, source: str) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not valid UTF-8"
        raise ConfigError([f"Readwise token: cannot read {source} {path}: {reason}"]) from None
    if not token:
        raise ConfigError([f"Readwise token: {source} {path} is empty"])
    return _checked_token(token, f"{source} {path}")


def _checked_token(token: str, source: str) -> str:
    # Sent as an HTTP header: whitespace inside or non-ASCII means a paste went wrong.
    if not token.isascii() or any(char.isspace() or not char.isprintable() for char in token):
        raise ConfigError(
            [f"Readwise token from {source} contains spaces or unusual characters; check it"]
        )
    return token


def resolve_token(
    cfg: ReadwiseConfig, environ: Mapping[str, str], credentials_dir: str | None
) -> str:
    """The Readwise token from, in order: `token`, `token_file`,
    `$CREDENTIALS_DIRECTORY/readwise-token` (systemd LoadCredential), `$<token_env>`.

    A configured source that is missing, unreadable or empty is an error (no silent fallback);
    messages name the source, never the value.
    """
    if cfg.token is not None:
        return _checked_token(cfg.token.strip(), "readwise.token in the config")
    if cfg.token_file is not None:
        return _token_from_file(cfg.token_file, "readwise.token_file")
    if credentials_dir:
        credential = Path(credentials_dir) / CREDENTIAL_NAME
        if credential.exists():
            return _token_from_file(credential, "systemd credential")
    env_name = cfg.token_env or DEFAULT_TOKEN_ENV
    token = environ.get(env_name)
    if token is None:
        raise ConfigError(
            [
                f"Readwise token: ${env_name} is not set; set it (get a token at "
                "https://readwise.io/access_token), or set token_file under [readwise]"
            ]
        )
    if not token.strip():
        raise ConfigError([f"Readwise token: ${env_name} is empty"])
    return _checked_token(token.strip(), f"${env_name}")
