"""Target config -> the adapter for its vault format (the only adapter code that reads config)."""

from __future__ import annotations

from syncd.adapters.base import Adapter
from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.config import TargetConfig
from syncd.notes.dates import logseq_journal_format
from syncd.notes.template_check import check_templates, name_warnings
from syncd.notes.template_set import load_template_set


def make_adapter(target: TargetConfig) -> Adapter:
    """The target's adapter, its templates loaded and tried on a sample book: a template that
    does not compile or raises is a TemplateProblem (exit 2) before anything is written."""
    templates = load_template_set(target.format, target.templates)
    adapter: Adapter
    if target.format == "logseq":
        journal_format = target.journal_format or logseq_journal_format(target.vault)
        adapter = LogseqAdapter(
            journal_format=journal_format, block_ids=target.block_ids, templates=templates
        )
    else:
        adapter = ObsidianAdapter(
            folder=target.folder,
            block_ids=target.block_ids,
            templates=templates,
            group_by_category=target.group_by_category,
        )
    check_templates(templates, adapter)
    return adapter


def template_warnings(target: TargetConfig) -> list[str]:
    """`syncd check`: the target's templates tried (as at every start), then the names in
    them that Readwise never sets."""
    return name_warnings(make_adapter(target).templates)
