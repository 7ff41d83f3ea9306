"""syncd: keeps Obsidian vaults and Logseq graphs in sync with Readwise highlights."""

__version__ = "0.1.0"
