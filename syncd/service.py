"""`syncd service install [--timer] [--dry-run]` and `syncd service uninstall`: from a config
that works to a running systemd user service, in one command.

install:  check the config, vaults, state dir and the token (the very token the service will
          use) -> store the token for LoadCredential= (0600, never echoed) -> write the user
          units from the templates in syncd/units/ (ExecStart= the syncd that is running now,
          ReadWritePaths= the config's state dir and every vault) -> systemctl --user
          daemon-reload, enable --now; without systemctl, print those commands instead.
uninstall: systemctl --user disable --now, then remove the units this command wrote (a unit
          it did not write is left alone); the stored token is kept and named.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from syncd.config import CREDENTIAL_NAME, DEFAULT_TOKEN_ENV, Config, resolve_token
from syncd.errors import ConfigError, SyncdError

MARKER = "# Written by `syncd service install`; `syncd service uninstall` removes it."
DAEMON_UNITS = ("syncd.service",)
TIMER_UNITS = ("syncd-once.service", "syncd.timer")
ALL_UNITS = ("syncd.service", "syncd-once.service", "syncd.timer")
_FIELD = re.compile(r"@[A-Z_]+@")

Say = Callable[[str], None]
Run = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class ServicePaths:
    units_dir: Path  # where the user manager looks for units: $XDG_CONFIG_HOME/systemd/user
    token_file: Path  # the credential LoadCredential= hands to syncd

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ServicePaths:
        # systemd's own rule for user units: $XDG_CONFIG_HOME if absolute, else ~/.config.
        configured = environ.get("XDG_CONFIG_HOME", "")
        home = Path(environ.get("HOME") or Path.home())
        config_home = Path(configured) if os.path.isabs(configured) else home / ".config"
        return cls(config_home / "systemd" / "user", config_home / "syncd" / CREDENTIAL_NAME)


def running_syncd(argv0: str | None = None) -> list[str]:
    """The command that runs this same syncd: the `syncd` script by its absolute path (a pipx
    or uv link is kept as a link, so an upgrade keeps working), else this Python with -m."""
    script = Path(argv0 if argv0 is not None else sys.argv[0])
    if script.name == "syncd" and script.is_file():
        return [os.path.abspath(script)]
    return [os.path.abspath(sys.executable), "-m", "syncd"]


# --- unit text ---------------------------------------------------------------------------------


def _checked(path: str) -> str:
    if any(ord(char) < 32 or char == "\x7f" for char in path):
        raise ConfigError([f"{path!r}: a path with control characters cannot go in a unit file"])
    return path.replace("%", "%%")  # `%` starts a specifier in every unit setting


def _exec_word(word: str) -> str:
    word = _checked(word).replace("$", "$$")  # ExecStart= expands $VARIABLES
    if re.search(r'[\s"\'\\;]', word):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def _path_word(path: Path, *, optional: bool) -> str:
    word = ("-" if optional else "") + _checked(str(path))
    if re.search(r'[\s"\'\\]', word):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def render_unit(name: str, cfg: Config, command: Sequence[str], token_file: Path | None) -> str:
    """One unit from its template, with this config's command line, token file (None: no
    target syncs from Readwise, so no credential) and paths."""
    template = resources.files("syncd").joinpath("units", name).read_text(encoding="utf-8")
    exec_start = " ".join(_exec_word(w) for w in [*command, "--config", str(cfg.path)])
    vaults = sorted({t.vault for t in cfg.targets if t.enabled})
    # "-": a folder that is missing (an unmounted drive, a deleted state dir) must not stop
    # the unit from starting with a bare namespace error: syncd itself says what is wrong
    # (a vault: exit 5, retried; the state dir: exit 7) in the journal.
    vault_lines = "\n".join(f"ReadWritePaths={_path_word(v, optional=True)}" for v in vaults)
    fields = {
        "@SYNCD@": exec_start,
        "@CREDENTIAL@": _credential_lines(token_file),
        "@STATE_DIR@": _path_word(cfg.state.dir, optional=True),
        "@VAULTS@": vault_lines or "# (no enabled target)",
    }
    lines = [line for line in template.splitlines() if not line.startswith("#@")]
    text = "\n".join(lines) + "\n"
    for field, value in fields.items():
        text = text.replace(field, value)
    leftover = _FIELD.search(text)
    assert leftover is None, f"{name}: template field {leftover.group()} not filled"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{MARKER}\n# From {cfg.path}, {stamp}.\n{text}"


def _credential_lines(token_file: Path | None) -> str:
    if token_file is None:
        # LoadCredential= of a file that does not exist fails the start: none for no token.
        return "# No LoadCredential=: no target syncs from Readwise, so syncd needs no token."
    return (
        "# A missing file fails the start with a clear message.\n"
        f"LoadCredential={CREDENTIAL_NAME}:{_checked(str(token_file))}"
    )


# --- install -----------------------------------------------------------------------------------


def _stored_token(
    cfg: Config,
    environ: Mapping[str, str],
    paths: ServicePaths,
    ask: Callable[[], str] | None,
) -> str:
    """The token the service will use: the one the config names (token, token_file, the
    environment variable), else the one stored by an earlier install, else asked for."""
    readwise = cfg.readwise
    env_name = readwise.token_env or DEFAULT_TOKEN_ENV
    if readwise.token is not None or readwise.token_file is not None or env_name in environ:
        return resolve_token(readwise, environ, None)
    if paths.token_file.is_file():
        return resolve_token(readwise, {}, str(paths.token_file.parent))
    if ask is None:
        return resolve_token(readwise, environ, None)  # raises: says how to give the token
    return resolve_token(readwise, {env_name: ask()}, None)


def _atomic_write(path: Path, data: str, *, mode: int) -> None:
    """Temp file beside `path` created with `mode` (never readable by others, even for a
    moment, whatever the umask), fsync, rename, fsync the folder."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)  # the umask may have taken bits off `mode`
            file.write(data.encode("utf-8"))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _write_private(path: Path, data: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _atomic_write(path, data, mode=0o600)


def install(
    cfg: Config,
    environ: Mapping[str, str],
    *,
    timer: bool = False,
    dry_run: bool = False,
    command: Sequence[str] | None = None,
    ask_token: Callable[[], str] | None = None,
    check: Callable[[str], None] | None = None,
    run: Run | None = None,
    say: Say = print,
) -> None:
    """`check(token)` checks the setup with the token about to be stored (syncd check's steps);
    `run` runs a systemctl command line (default: subprocess)."""
    paths = ServicePaths.from_environ(environ)
    units = TIMER_UNITS if timer else DAEMON_UNITS
    argv = list(command) if command is not None else running_syncd()
    # Device files only (no target syncs from Readwise): no token asked for, stored or loaded.
    token_file = paths.token_file if cfg.uses_readwise else None
    texts = {name: render_unit(name, cfg, argv, token_file) for name in units}
    main_unit = units[-1]
    commands = [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", main_unit],
    ]
    if dry_run:
        for name, text in texts.items():
            say(f"would write {paths.units_dir / name}:")
            say(text)
        if token_file is not None:
            say(f"would store the Readwise token in {token_file} (mode 0600)")
        else:
            say("no Readwise token needed: no target syncs from Readwise")
        say(f"would create the state dir {cfg.state.dir}")
        say("would run: " + " && ".join(" ".join(c) for c in commands))
        return
    token = "" if token_file is None else _stored_token(cfg, environ, paths, ask_token)
    if check is not None:
        check(token)  # before anything is written: a bad token or vault stops here
    cfg.state.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if token_file is not None:
        _write_private(token_file, token + "\n")
        say(f"token: stored in {token_file} (mode 0600)")
    else:
        say("token: none needed (no target syncs from Readwise)")
    paths.units_dir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        target = paths.units_dir / name
        _keep_a_foreign_unit(target, say)
        _atomic_write(target, text, mode=0o644)
        say(f"unit: wrote {target}")
    _systemctl(commands, environ, run, say)
    say(f"logs: journalctl --user -u {units[0].removesuffix('.service')} -f")


def _keep_a_foreign_unit(target: Path, say: Say) -> None:
    """A unit someone installed by hand is moved aside (name.bak), not silently replaced."""
    try:
        existing = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError):
        existing = ""
    if not existing.startswith(MARKER):
        backup = target.with_name(target.name + ".bak")
        target.replace(backup)
        say(f"unit: {target} was not written by syncd; kept it as {backup}")


def _systemctl(
    commands: Sequence[Sequence[str]], environ: Mapping[str, str], run: Run | None, say: Say
) -> None:
    found = shutil.which("systemctl", path=environ.get("PATH", os.defpath))
    if found is None:
        say("systemctl is not on PATH; to start the service, run:")
        for argv in commands:
            say("  " + " ".join(argv))
        return
    runner = run if run is not None else _run
    for argv in commands:
        result = runner([found, *argv[1:]])
        if result.returncode != 0:
            output = " ".join((result.stderr or result.stdout or "").split())[:400]
            raise SyncdError(
                f"`{' '.join(argv)}` failed (exit {result.returncode}): {output or 'no output'}"
            )
        say(f"ran: {' '.join(argv)}")


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


# --- uninstall ---------------------------------------------------------------------------------


def uninstall(environ: Mapping[str, str], *, run: Run | None = None, say: Say = print) -> None:
    paths = ServicePaths.from_environ(environ)
    ours: list[Path] = []
    for name in ALL_UNITS:
        path = paths.units_dir / name
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError):
            text = ""
        if text.startswith(MARKER):
            ours.append(path)
        else:
            say(f"unit: left {path} alone: `syncd service install` did not write it")
    if not ours:
        say(f"no unit written by `syncd service install` in {paths.units_dir}")
    else:
        started = [p.name for p in ours if p.name in ("syncd.service", "syncd.timer")]
        if started:
            _systemctl([["systemctl", "--user", "disable", "--now", *started]], environ, run, say)
        for path in ours:
            path.unlink()
            say(f"unit: removed {path}")
        _systemctl([["systemctl", "--user", "daemon-reload"]], environ, run, say)
    if paths.token_file.exists():
        say(f"token: kept {paths.token_file} (delete it if you no longer need it)")
