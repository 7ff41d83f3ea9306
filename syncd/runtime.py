"""Config -> runtime objects: the Readwise client and one TargetRuntime per enabled target."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

import httpx

from syncd.adapters.registry import make_adapter
from syncd.adapters.vault import VaultFiles
from syncd.config import Config, TargetConfig
from syncd.model import parse_timestamp
from syncd.sources.readwise import ReadwiseClient, RetryPolicy, interactive_policy
from syncd.sources.readwise_write import ReadwiseWriter
from syncd.sync.engine import TargetRuntime
from syncd.sync.plan import TargetPolicy
from syncd.writeback.push import WriteBack


def make_client(
    http: httpx.Client, cfg: Config, token: str, *, interactive: bool = False
) -> ReadwiseClient:
    """`interactive`: someone waits at a terminal, so until Readwise first answers, a
    connection that cannot be made gives up within ~10 s (the daemon keeps its back-off)."""
    retry = RetryPolicy(
        max_attempts=cfg.readwise.max_attempts,
        backoff_max=cfg.readwise.backoff_max,
        timeout=cfg.readwise.timeout,
    )
    return ReadwiseClient(
        http,
        token=token,
        base_url=cfg.readwise.base_url,
        retry=retry,
        first_retry=interactive_policy(retry) if interactive else None,
    )


def make_writeback(
    http: httpx.Client,
    cfg: Config,
    token: str,
    network: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
) -> WriteBack | None:
    """The write-back step, when a target sends anything back to Readwise (`write_back`);
    `network` wraps each wait on Readwise (see WriteBack). None with no Readwise configured
    (device files only): there is nowhere to send anything."""
    if not cfg.uses_readwise or not any(t.enabled and t.write_back for t in cfg.targets):
        return None
    retry = RetryPolicy(
        max_attempts=cfg.readwise.max_attempts,
        backoff_max=cfg.readwise.backoff_max,
        timeout=cfg.readwise.timeout,
    )
    writer = ReadwiseWriter(http, token=token, base_url=cfg.readwise.base_url, retry=retry)
    return WriteBack(writer, network=network)


def build_targets(cfg: Config) -> list[TargetRuntime]:
    runtimes = []
    for target in cfg.targets:
        if not target.enabled:
            continue
        files = VaultFiles(target.vault)
        runtimes.append(
            TargetRuntime(
                policy=TargetPolicy(
                    name=target.name,
                    vault=target.vault,
                    categories=target.categories,
                    on_upstream_delete=target.on_upstream_delete,
                    layout=target.layout,
                    resync_deleted=target.resync_deleted,
                    sources=target.sources,
                    only_tags=target.only_tags,
                    skip_tags=target.skip_tags,
                    write_back=target.write_back,
                ),
                adapter=make_adapter(target),
                read_file=files.read,
                write_file=files.write,
                write_batch=files.write_batch,
                cleanup_temp=files.cleanup_temp,
                list_files=functools.partial(files.list_markdown, _content_folder(target)),
            )
        )
    return runtimes


def _content_folder(target: TargetConfig) -> str:
    """Where a target's pages may be: Logseq's pages/, or the whole Obsidian vault (people move
    notes out of the Readwise folder)."""
    return "pages" if target.format == "logseq" else ""


def section_clock() -> Callable[[], datetime]:
    """Local time for section headers. SYNCD_NOW (ISO 8601) pins it, for reproducible output."""
    pinned = os.environ.get("SYNCD_NOW")
    if pinned:
        moment = parse_timestamp(pinned, where="SYNCD_NOW")
        if moment is not None:
            local = moment.astimezone()
            return lambda: local
    return lambda: datetime.now().astimezone()
