"""Warnings about a setup that works but is probably not what the person meant, said by
`syncd check`, and logged when a pass or the daemon starts:

- a config file holding the Readwise token (or a token file) that others can read: named,
  with the fix (`chmod 600`), as ssh and netrc do; the token itself is never shown;
- a Logseq target whose folder is not a graph root (no `logseq/config.edn`), such as
  `~/Logseq` for `~/Logseq/graph`: syncd would quietly make `pages/` there and use the default
  date format;
- a target with `write_back` that gets no Readwise highlights (device sources only): nothing
  of its pages is ever sent.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from syncd.config import READWISE_SOURCE, Config, TargetConfig
from syncd.log import get_logger

GRAPH_CONFIG = Path("logseq") / "config.edn"

_log = get_logger("syncd.advice")


def token_exposure(cfg: Config) -> list[str]:
    """The files holding the token that users other than the owner can read."""
    holders: list[tuple[Path, str]] = []
    if cfg.readwise.token is not None:
        holders.append((cfg.path, "holds the Readwise token (token = ...)"))
    if cfg.readwise.token_file is not None:
        holders.append((cfg.readwise.token_file, "is the Readwise token file"))
    found = []
    for path, what in holders:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue  # missing or unreadable: loading the token says so, with the reason
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            found.append(
                f"{path} {what} and is readable by others (mode {stat.S_IMODE(mode):04o}):"
                f" run `chmod 600 {path}`"
            )
    return found


def not_a_graph(target: TargetConfig) -> str | None:
    """Why a Logseq target's folder does not look like a graph root, or None."""
    if target.format != "logseq" or not target.vault.is_dir():
        return None  # a missing folder is refused by the pass itself (exit 5)
    if (target.vault / GRAPH_CONFIG).is_file():
        return None
    return (
        f"target {target.name}: {target.vault} is not a Logseq graph root (no {GRAPH_CONFIG}):"
        " a graph root holds logseq/config.edn, pages/ and journals/. syncd would create pages/"
        " there and use Logseq's default date format; if the graph is a folder below, set"
        " vault to it"
    )


def idle_write_back(cfg: Config, target: TargetConfig) -> str | None:
    """Why a target's `write_back` can never send anything, or None."""
    if not target.write_back:
        return None
    if cfg.uses_readwise and (target.sources is None or READWISE_SOURCE in target.sources):
        return None
    return (
        f"target {target.name}: write_back does nothing: the target gets no Readwise highlights"
        " (edits to highlights from device sources are never sent)"
    )


def setup_warnings(cfg: Config, *, new_targets: Callable[[str], bool]) -> list[str]:
    """Every warning for this config; graph roots only for targets `new_targets` says have no
    pages yet (after the first pass the person has seen where the pages went)."""
    warnings = token_exposure(cfg)
    for target in cfg.targets:
        if target.enabled and new_targets(target.name):
            warning = not_a_graph(target)
            if warning is not None:
                warnings.append(warning)
        idle = idle_write_back(cfg, target) if target.enabled else None
        if idle is not None:
            warnings.append(idle)
    return warnings


def log_setup_warnings(cfg: Config, *, new_targets: Callable[[str], bool]) -> None:
    for warning in setup_warnings(cfg, new_targets=new_targets):
        _log.warning("setup.warning", message=warning)
