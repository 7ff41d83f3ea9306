"""When a pass gets a write-back step (syncd.runtime.make_writeback): only when a target has
`write_back` and Readwise is configured; with device files only there is nowhere to send."""

from __future__ import annotations

from pathlib import Path

import httpx

from syncd.advice import setup_warnings
from syncd.config import load_config
from syncd.runtime import make_writeback
from syncd.writeback.push import WriteBack

TARGET = '[[targets]]\nname = "main"\nformat = "obsidian"\nvault = "."\n'
KINDLE = '[[sources]]\nname = "kindle"\nkind = "kindle_clippings"\npath = "My Clippings.txt"\n'
WRITE_BACK = 'write_back = ["note", "tags"]\n'


def _writeback(tmp_path: Path, text: str) -> WriteBack | None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path, environ={})
    with httpx.Client() as http:
        return make_writeback(http, cfg, "token")


def test_readwise_and_write_back_make_the_step(tmp_path: Path) -> None:
    assert _writeback(tmp_path, "[readwise]\n" + TARGET + WRITE_BACK + KINDLE) is not None


def test_no_write_back_key_makes_none(tmp_path: Path) -> None:
    assert _writeback(tmp_path, "[readwise]\n" + TARGET + KINDLE) is None


def test_device_files_only_make_none_even_with_write_back(tmp_path: Path) -> None:
    assert _writeback(tmp_path, TARGET + WRITE_BACK + KINDLE) is None
    picked = TARGET + WRITE_BACK + 'sources = ["kindle"]\n' + "[readwise]\n" + KINDLE
    assert _writeback(tmp_path, picked) is None


def test_check_warns_of_write_back_that_can_send_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(TARGET + WRITE_BACK + KINDLE, encoding="utf-8")
    warnings = setup_warnings(load_config(path, environ={}), new_targets=lambda _name: False)
    assert warnings == [
        "target main: write_back does nothing: the target gets no Readwise highlights"
        " (edits to highlights from device sources are never sent)"
    ]
    path.write_text("[readwise]\n" + TARGET + WRITE_BACK + KINDLE, encoding="utf-8")
    assert setup_warnings(load_config(path, environ={}), new_targets=lambda _name: False) == []
