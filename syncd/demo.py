"""`syncd demo`: a real pass, offline, from the built-in sample library.

It starts the project's stand-in Readwise server on 127.0.0.1 (a free port), writes a config for
one Obsidian vault and one Logseq graph under the demo folder, runs a normal pass against the
stand-in and says what to open. Each later run first has "Readwise" edit a highlight in a note
you edited, add one and delete one (syncd.demo_changes), then says what the pass did with each.

It also syncs a Kindle: a small `My Clippings.txt` shipped with the package is copied to
`kindle/` under the demo folder (once: append a clipping to it and run the demo again). One of
its books is also in the sample Readwise library, so the demo shows the two meeting on one page.
"""

from __future__ import annotations

import contextlib
import shutil
from importlib import resources
from pathlib import Path

from syncd.config import load_config
from syncd.demo_changes import DemoRound, DemoTarget, save_log
from syncd.passes import run_once
from syncd.standin import StandinServer, sample_library
from syncd.sync.state import StateStore

DEMO_TOKEN = "demo-token-not-secret"

_LOGSEQ_CONFIG = """;; Written by `syncd demo`: a minimal Logseq graph config.
{:meta/version 1
 :journal/page-title-format "MMM do, yyyy"}
"""


def _config_text(base_url: str, root: Path) -> str:
    return f"""# Written by `syncd demo`. base_url points at the stand-in server the demo started;
# it is gone once the demo exits. Copy this file as a start for your own config.
[readwise]
token = "{DEMO_TOKEN}"
base_url = "{base_url}"

[state]
dir = "{(root / "state").as_posix()}"

[[sources]]
name = "kindle"
kind = "kindle_clippings"
path = "{(root / "kindle" / "My Clippings.txt").as_posix()}"

[[targets]]
name = "obsidian-demo"
format = "obsidian"
vault = "{(root / "obsidian-vault").as_posix()}"

[[targets]]
name = "logseq-demo"
format = "logseq"
vault = "{(root / "logseq-graph").as_posix()}"
"""


def run_demo(folder: Path, *, quiet: bool = False) -> int:
    root = folder.expanduser().resolve()
    (root / "obsidian-vault").mkdir(parents=True, exist_ok=True)
    (root / "logseq-graph" / "logseq").mkdir(parents=True, exist_ok=True)
    edn = root / "logseq-graph" / "logseq" / "config.edn"
    if not edn.exists():
        edn.write_text(_LOGSEQ_CONFIG, encoding="utf-8")
    clippings = root / "kindle" / "My Clippings.txt"
    if not clippings.exists():
        clippings.parent.mkdir(parents=True, exist_ok=True)
        shipped = resources.files("syncd") / "demo_files" / "My Clippings.txt"
        with resources.as_file(shipped) as source:
            shutil.copyfile(source, clippings)
    targets = [
        DemoTarget("obsidian-demo", root / "obsidian-vault"),
        DemoTarget("logseq-demo", root / "logseq-graph"),
    ]
    library = sample_library()
    # From the second run on, "Readwise" changes a few highlights first (see demo_changes).
    demo_round = DemoRound.prepare(root, library, targets)
    with StandinServer(library, token=DEMO_TOKEN) as server:
        base_url = server.base_url
        config_path = root / "config.toml"
        config_path.write_text(_config_text(base_url, root), encoding="utf-8")
        config_path.chmod(0o600)  # it holds a token: copied as a start, it stays private
        cfg = load_config(config_path, environ={}, check_vaults=False)
        run_once(cfg, DEMO_TOKEN, quiet=quiet)
    save_log(root, demo_round.run, demo_round.earlier + demo_round.made)
    if not quiet:
        with contextlib.closing(StateStore.open(cfg.state.dir)) as store:
            for line in demo_round.describe(library, store, targets):
                print(line)
        obsidian = root / "obsidian-vault" / "Readwise"
        logseq = root / "logseq-graph" / "pages"
        print(f"Open the Obsidian vault {root / 'obsidian-vault'} (notes in {obsidian}),")
        print(f"or the Logseq graph {root / 'logseq-graph'} (pages in {logseq}).")
        print(f"Kindle highlights come from {clippings}: add a clipping and run it again.")
        print(
            "Edit a note and run `syncd demo` again: Readwise (the stand-in) changes a few"
            " highlights, your edit stays, nothing is duplicated."
        )
    return 0
