"""`syncd check`: the config, every target's vault, the state store, each device source and the
token (none when no target uses Readwise), each said in one line as it passes; the first that
fails raises its SyncdError (the CLI maps the exit code)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

import httpx

from syncd.adapters.registry import template_warnings
from syncd.advice import setup_warnings
from syncd.config import Config
from syncd.passes import readwise_http, readwise_token
from syncd.runtime import build_targets, make_client
from syncd.sources.local_pass import check_lines
from syncd.sync.engine import check_vault_root
from syncd.sync.state import StateStore
from syncd.wording import counted


def check_setup(
    cfg: Config,
    environ: Mapping[str, str],
    *,
    say: Callable[[str], None] = print,
    transport: httpx.BaseTransport | None = None,
    token: str | None = None,
) -> None:
    """`token`: check this one instead of the config's (`syncd service install` checks the
    token it is about to store)."""
    say(f"config: {cfg.path} ok ({counted(len(cfg.targets), 'target')})")
    for target in cfg.targets:
        if target.templates is not None:
            for warning in template_warnings(target):
                say(f"warning: target {target.name}: {warning}")
            say(f"target {target.name}: templates {target.templates} ok")
    if token is None:
        token = readwise_token(cfg, environ)
    with contextlib.closing(StateStore.open(cfg.state.dir, verify=True)) as store:
        for runtime in build_targets(cfg):
            check_vault_root(runtime, store)
            say(f"target {runtime.policy.name}: vault {runtime.policy.vault} ok")
    say(f"state: {cfg.state.dir} ok")
    for warning in setup_warnings(cfg, new_targets=lambda _name: True):
        say(f"warning: {warning}")
    for line in check_lines(cfg):
        say(line)
    if not cfg.uses_readwise:
        return  # device files only: no token to check
    with readwise_http(cfg, transport=transport) as http:
        make_client(http, cfg, token, interactive=True).check_token()
    say(f"token: accepted by {cfg.readwise.base_url}")
