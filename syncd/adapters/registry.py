"""Target config -> the adapter for its vault format (the only adapter code that reads config)."""

from __future__ import annotations

from syncd.adapters.base import Adapter
from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.config import TargetConfig
from syncd.notes.dates import logseq_journal_format


def make_adapter(target: TargetConfig) -> Adapter:
    if target.format == "logseq":
        journal_format = target.journal_format or logseq_journal_format(target.vault)
        return LogseqAdapter(journal_format=journal_format, block_ids=target.block_ids)
    return ObsidianAdapter(folder=target.folder, block_ids=target.block_ids)
