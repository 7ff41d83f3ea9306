"""Write the units `syncd service install` would write, for `systemd-analyze verify` in CI.

    python tests/tools/render_units.py OUT_DIR SYNCD

Renders every unit template exactly as `service install` does (syncd.service.render_unit), for
a config with an Obsidian vault whose path has a space and a Logseq graph, all under OUT_DIR.
"""

from __future__ import annotations

import sys
from pathlib import Path

from syncd.config import load_config
from syncd.service import ALL_UNITS, render_unit


def main(out: Path, syncd: str) -> None:
    vault, graph, state = out / "my vault", out / "graph", out / "state"
    for folder in (vault, graph / "logseq", state):
        folder.mkdir(parents=True, exist_ok=True)
    config = out / "config.toml"
    config.write_text(
        f'[state]\ndir = "{state}"\n'
        f'[[targets]]\nname = "main"\nformat = "obsidian"\nvault = "{vault}"\n'
        f'[[targets]]\nname = "graph"\nformat = "logseq"\nvault = "{graph}"\n',
        encoding="utf-8",
    )
    cfg = load_config(config, environ={})
    for name in ALL_UNITS:
        text = render_unit(name, cfg, [syncd], out / "readwise-token")
        (out / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), sys.argv[2])
