"""The daemon and a user's templates: a broken template on SIGHUP keeps the running ones; a good
one takes effect for the pages the user did not touch."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import Setup
from tests.e2e.daemon_support import Daemon, Notifications, live_book, poll_every


def _highlight_template(setup: Setup, tmp_path: Path) -> Path:
    """The obs target's templates: a folder with a plain list-item highlight.j2."""
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "highlight.j2").write_text("- {{ highlight_text }}\n", encoding="utf-8")
    text = setup.config.read_text(encoding="utf-8")
    setup.config.write_text(
        text.replace('name = "obs"\n', f'name = "obs"\ntemplates = "{folder}"\n'),
        encoding="utf-8",
    )
    return folder


def test_sighup_with_a_broken_then_a_good_template(
    setup: Setup,
    notify: Notifications,
    start: Callable[..., Daemon],
    tmp_path: Path,
) -> None:
    folder = _highlight_template(setup, tmp_path)
    poll_every(setup, 1)
    daemon = start()
    notify.wait_for(lambda m: m == "READY=1")
    daemon.wait_for("pass.summary")
    _book_id, path = live_book(setup, "obs")
    assert "\n- " in path.read_text(encoding="utf-8")

    mark = daemon.mark()
    (folder / "highlight.j2").write_text("> {{ highlight_text }\n", encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    failed = daemon.wait_for("config.reload_failed", since=mark)
    assert any(f"{folder / 'highlight.j2'}:1" in p for p in failed["problems"])

    mark = daemon.mark()
    (folder / "highlight.j2").write_text("> {{ highlight_text }}\n", encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("config.reloaded", since=mark)
    daemon.wait_for("templates.changed", since=mark)
    daemon.wait_for("file.written", since=mark, target="obs")
    daemon.wait_for("pass.summary", since=mark)
    assert "\n> " in path.read_text(encoding="utf-8")
    assert daemon.stop() < 5


def test_an_edited_template_file_is_picked_up_by_the_next_pass(
    setup: Setup, start: Callable[..., Daemon], tmp_path: Path
) -> None:
    """No SIGHUP needed: the daemon looks at the template files before each pass. A broken
    edit is said once and the running templates kept; the fixed file takes effect."""
    template = _highlight_template(setup, tmp_path) / "highlight.j2"
    poll_every(setup, 1)
    daemon = start()
    daemon.wait_for("pass.summary")
    _book_id, path = live_book(setup, "obs")

    mark = daemon.mark()
    template.write_text("> {{ highlight_text }\n", encoding="utf-8")  # saved half-typed
    failed = daemon.wait_for("templates.reload_failed", since=mark)
    assert any(f"{template}:1" in p for p in failed["problems"])
    daemon.wait_for("pass.summary", since=mark)  # the pass goes on with the running templates
    assert "\n- " in path.read_text(encoding="utf-8")

    mark = daemon.mark()
    template.write_text("> {{ highlight_text }}\n", encoding="utf-8")
    daemon.wait_for("templates.reloaded", since=mark, targets=["obs", "lsq"])
    daemon.wait_for("templates.changed", since=mark, target="obs")
    daemon.wait_for("file.written", since=mark, target="obs")
    daemon.wait_for("pass.summary", since=mark)
    assert "\n> " in path.read_text(encoding="utf-8")
    after = daemon.mark()
    daemon.wait_for("pass.summary", since=after)
    assert not [e for e in daemon.events[after:] if e.get("event") == "templates.reloaded"]
