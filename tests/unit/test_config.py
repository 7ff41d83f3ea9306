"""The TOML config loader (syncd.config): the example, every broken shape, and the token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from syncd.config import (
    SCHEMA,
    Config,
    ReadwiseConfig,
    default_config_path,
    find_config_path,
    load_config,
    resolve_token,
)
from syncd.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "syncd.example.toml"
SECRET = "sekrit-T0KEN-value"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fake home holding the example's two vaults."""
    (tmp_path / "Obsidian" / "Main").mkdir(parents=True)
    (tmp_path / "Logseq" / "graph").mkdir(parents=True)
    return tmp_path


def write(folder: Path, text: str, name: str = "config.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, *, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={} if environ is None else environ)
    assert caught.value.exit_code == 2
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


# --- the example file --------------------------------------------------------------------------


def test_example_loads_with_its_vaults(home: Path) -> None:
    config = load_config(EXAMPLE, environ={"HOME": str(home)})
    assert config.path == EXAMPLE
    assert config.readwise == ReadwiseConfig()  # the example shows the defaults
    assert config.daemon.poll_interval == 300
    assert config.daemon.full_reconcile_interval == 24 * 3600
    main, graph = config.targets
    assert (main.name, main.format, main.vault) == ("main", "obsidian", home / "Obsidian/Main")
    assert main.folder == "Readwise" and main.root == home / "Obsidian/Main/Readwise"
    assert main.categories == frozenset({"books", "articles"})
    assert main.write_back == frozenset({"note", "tags"})
    assert (graph.name, graph.format, graph.folder) == ("graph", "logseq", "")
    assert graph.vault == graph.root == home / "Logseq/graph"
    assert graph.categories is None and graph.journal_format is None and graph.enabled
    assert graph.write_back == frozenset()  # the default: nothing is sent


_HEADER = re.compile(r"^\s*(?:#\s*)?\[\[?(?P<section>[a-z_]+)\]\]?\s*$")
_KEY_LINE = re.compile(r"^\s*(?P<commented>#\s*)?(?P<key>[a-z_]+)\s*=")


def documented_keys() -> dict[str, bool]:
    """Every `section.key` in the example (set or commented out) -> has an explanatory comment."""
    documented: dict[str, bool] = {}
    section = ""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if header := _HEADER.match(line):
            section = header["section"]
            continue
        if (found := _KEY_LINE.match(line)) is None:
            continue
        dotted = f"{section}.{found['key']}"
        above = lines[index - 1].strip()
        commented = above.startswith("#") and not _KEY_LINE.match(above)
        documented.setdefault(dotted, commented)  # the first occurrence documents it
    return documented


def test_every_accepted_key_is_documented_in_the_example_and_vice_versa() -> None:
    accepted = {f"{section}.{key.name}" for section, spec in SCHEMA.items() for key in spec.keys}
    documented = documented_keys()
    assert set(documented) == accepted
    undocumented = [key for key, has_comment in documented.items() if not has_comment]
    assert undocumented == []


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, '[[targets]]\nname = "v"\nformat = "obsidian"\nvault = "."\n')
    config = load_config(path, environ={})
    assert config.readwise == ReadwiseConfig()
    assert config.readwise.base_url == "https://readwise.io"
    assert config.state.dir.name == "syncd"
    (target,) = config.targets
    assert target.vault == tmp_path.resolve() and target.folder == "Readwise"
    assert (target.layout, target.on_upstream_delete, target.enabled) == ("append", "remove", True)


# --- broken configs ----------------------------------------------------------------------------

TARGET = '[[targets]]\nname = "main"\nformat = "obsidian"\nvault = "{v1}"\n'
GRAPH = '[[targets]]\nname = "graph"\nformat = "logseq"\nvault = "{v2}"\n'

BROKEN = [
    # (TOML text, a fragment the single problem must contain)
    ("[readwise\n" + TARGET, "line 1, column 10: invalid TOML"),
    (TARGET + 'name = "again"\n', "line 5, column"),
    (
        '[readwise]\ntokn_env = "X"\n' + TARGET,
        'readwise.tokn_env: unknown key (did you mean "token_env"?)',
    ),
    ("[reedwise]\n" + TARGET, 'reedwise: unknown section (did you mean "readwise"?)'),
    ('[target]\nname = "x"\n' + TARGET, 'target: unknown section (did you mean "targets"?)'),
    ('[targets]\nname = "x"\n', "targets: must be an array of tables, written [[targets]]"),
    ('readwise = "x"\n' + TARGET, "readwise: must be a table, written [readwise]"),
    (
        TARGET.replace('"obsidian"', '"obsidan"'),
        'targets[0].format: must be one of "obsidian", "logseq", got "obsidan"',
    ),
    (TARGET.replace('name = "main"\n', ""), "targets[0].name: is required but missing"),
    (TARGET.replace('format = "obsidian"\n', ""), "targets[0].format: is required but missing"),
    (TARGET.replace('vault = "{v1}"\n', ""), "targets[0].vault: is required but missing"),
    (TARGET.replace('"main"', '""'), "targets[0].name: must be a non-empty string"),
    (TARGET.replace("{v1}", "{v1}/missing"), "targets[0].vault: {v1}/missing does not exist"),
    (TARGET.replace("{v1}", "{file}"), "targets[0].vault: {file} is not a folder"),
    (TARGET.replace("{v1}", "$NOT_SET/x"), "targets[0].vault: uses ${NOT_SET}, which is not set"),
    (TARGET + 'fromat = "x"\n', 'targets[0].fromat: unknown key (did you mean "format"?)'),
    (TARGET + "[targets.options]\nx = 1\n", "targets[0].options: unknown key"),
    (
        TARGET + TARGET.replace("{v1}", "{v2}"),
        'targets[1].name: "main" is already the name of targets[0]',
    ),
    (
        TARGET + TARGET.replace('"main"', '"other"'),
        "targets[1].vault: writes into {v1}/Readwise, as targets[0] already does",
    ),
    (
        TARGET + GRAPH.replace("{v2}", "{v1}"),
        "targets[1].vault: its folder {v1} and targets[0]'s folder {v1}/Readwise are inside"
        " one another",
    ),
    ("[readwise]\n", "targets: no targets"),
    (
        '[readwise]\nbase_url = "ftp://readwise.io"\n' + TARGET,
        "readwise.base_url: must be an http:// or https:// URL",
    ),
    (
        '[readwise]\nbase_url = ""\n' + TARGET,
        "readwise.base_url: must be an http:// or https:// URL",
    ),
    (
        '[readwise]\nbase_url = "https://u:p@host/"\n' + TARGET,
        "without user, password, query or fragment",
    ),
    (
        "[readwise]\nmax_attempts = 0\n" + TARGET,
        "readwise.max_attempts: must be a whole number, at least 1, got 0",
    ),
    (
        "[readwise]\nmax_attempts = true\n" + TARGET,
        "readwise.max_attempts: must be a whole number, at least 1, got true",
    ),
    (
        "[readwise]\ntimeout = -1\n" + TARGET,
        "readwise.timeout: must be a number of seconds above 0, got -1",
    ),
    (
        "[readwise]\nbackoff_max = inf\n" + TARGET,
        "readwise.backoff_max: must be a number of seconds above 0, got inf",
    ),
    (
        '[readwise]\noverlap_seconds = "5m"\n' + TARGET,
        'readwise.overlap_seconds: must be a number of seconds, 0 or more, got "5m"',
    ),
    (
        '[readwise]\ntoken_env = "1BAD"\n' + TARGET,
        "readwise.token_env: must be an environment variable name",
    ),
    (
        '[daemon]\npoll_interval = "5 minutes"\n' + TARGET,
        'daemon.poll_interval: must be a number of seconds or a duration like "90s"',
    ),
    (
        "[daemon]\nfull_reconcile_interval = 0\n" + TARGET,
        "daemon.full_reconcile_interval: must be a number of seconds or a duration",
    ),
    ("[state]\ndir = 5\n" + TARGET, "state.dir: must be a non-empty path string, got 5"),
    (TARGET + 'block_ids = "yes"\n', 'targets[0].block_ids: must be true or false, got "yes"'),
    (
        TARGET + 'layout = "merge"\n',
        'targets[0].layout: must be one of "append", "rewrite", got "merge"',
    ),
    (
        TARGET + 'on_upstream_delete = "delete"\n',
        'targets[0].on_upstream_delete: must be one of "remove", "keep"',
    ),
    (
        TARGET + 'categories = ["bok"]\n',
        'targets[0].categories: has unknown categories "bok" (did you mean "books"?)',
    ),
    (TARGET + "categories = []\n", "targets[0].categories: must be a non-empty list of categories"),
    (
        TARGET + 'write_back = ["notes"]\n',
        'targets[0].write_back: has unknown fields "notes" (did you mean "note"?)',
    ),
    (TARGET + 'write_back = "note"\n', "targets[0].write_back: must be a list of fields"),
    (TARGET + 'folder = "../outside"\n', "targets[0].folder: must be a folder inside the vault"),
    (TARGET + 'folder = ".hidden"\n', "not a hidden one"),
    (GRAPH + 'folder = "Readwise"\n', 'targets[0].folder: applies only to format "obsidian"'),
    (
        TARGET + 'journal_format = "yyyy-MM-dd"\n',
        'targets[0].journal_format: applies only to format "logseq"',
    ),
    (TARGET + "enabled = 1\n", "targets[0].enabled: must be true or false, got 1"),
]


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    (tmp_path / "afile").write_text("not a folder")
    return {
        "{v1}": str(tmp_path / "v1"),
        "{v2}": str(tmp_path / "v2"),
        "{file}": str(tmp_path / "afile"),
    }


def fill(text: str, places: dict[str, str]) -> str:
    for placeholder, value in places.items():
        text = text.replace(placeholder, value)
    return text


@pytest.mark.parametrize(("toml", "fragment"), BROKEN, ids=[f"{i:02d}" for i in range(len(BROKEN))])
def test_broken_config_names_file_and_key(
    tmp_path: Path, places: dict[str, str], toml: str, fragment: str
) -> None:
    path = write(tmp_path, fill(toml, places))
    problems = problems_of(path, environ={})
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}: ")
    assert fill(fragment, places) in problems[0]


def test_at_least_twenty_broken_shapes() -> None:
    assert len(BROKEN) >= 20


def test_every_problem_is_reported_at_once(tmp_path: Path, places: dict[str, str]) -> None:
    toml = (
        '[readwise]\nbase_url = "gopher://x"\n'
        '[daemon]\npoll_interval = "soon"\n' + TARGET.replace('"obsidian"', '"roam"')
    )
    problems = problems_of(write(tmp_path, fill(toml, places)), environ={})
    assert [problem.split(": ")[1] for problem in problems] == [
        "readwise.base_url",
        "daemon.poll_interval",
        "targets[0].format",
    ]


def test_unreadable_files(tmp_path: Path) -> None:
    assert "no config file here" in problems_of(tmp_path / "missing.toml")[0]
    assert "is a folder, not a config file" in problems_of(tmp_path)[0]
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"# caf\xe9\n")
    assert problems_of(bad) == [f"{bad}: not valid UTF-8 (byte 5)"]


def test_vault_checks_can_be_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, TARGET.replace("{v1}", str(tmp_path / "not-mounted")))
    (target,) = load_config(path, environ={}, check_vaults=False).targets
    assert target.vault == tmp_path / "not-mounted"


def test_relative_paths_are_taken_from_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf" / "vaults" / "main").mkdir(parents=True)
    path = write(
        tmp_path / "conf",
        TARGET.replace("{v1}", "vaults/main") + '[state]\ndir = "state"\n'
        '[readwise]\ntoken_file = "token.txt"\n',
    )
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("conf/config.toml"), environ={})
    assert config.path == path
    assert config.targets[0].vault == tmp_path / "conf" / "vaults" / "main"
    assert config.state.dir == tmp_path / "conf" / "state"
    assert config.readwise.token_file == tmp_path / "conf" / "token.txt"


def test_home_and_environment_variables_expand(tmp_path: Path) -> None:
    (tmp_path / "data" / "vault").mkdir(parents=True)
    toml = TARGET.replace("{v1}", "${DATA}/vault") + '[state]\ndir = "~/st$$te"\n'
    config = load_config(
        write(tmp_path, toml), environ={"DATA": str(tmp_path / "data"), "HOME": "/h"}
    )
    assert config.targets[0].vault == tmp_path / "data" / "vault"
    assert config.state.dir == Path("/h/st$te")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [('"90s"', 90), ('"5m"', 300), ('"1h30m"', 5400), ('"2d"', 172800), ("45", 45), ("0.5", 0.5)],
)
def test_durations(tmp_path: Path, places: dict[str, str], value: str, seconds: float) -> None:
    toml = f"[daemon]\npoll_interval = {value}\n" + fill(TARGET, places)
    assert load_config(write(tmp_path, toml), environ={}).daemon.poll_interval == seconds


def test_base_url_points_at_a_local_stand_in(tmp_path: Path, places: dict[str, str]) -> None:
    toml = '[readwise]\nbase_url = "http://127.0.0.1:8765/"\n' + fill(TARGET, places)
    assert (
        load_config(write(tmp_path, toml), environ={}).readwise.base_url == "http://127.0.0.1:8765"
    )


# --- where the config is -----------------------------------------------------------------------


def test_find_config_path_precedence(tmp_path: Path) -> None:
    env = {"SYNCD_CONFIG": str(tmp_path / "env.toml"), "HOME": str(tmp_path)}
    assert find_config_path(str(tmp_path / "cli.toml"), env) == tmp_path / "cli.toml"
    assert find_config_path(None, env) == tmp_path / "env.toml"
    assert find_config_path("~/x.toml", env) == tmp_path / "x.toml"
    assert find_config_path(None, {}) == default_config_path()
    assert default_config_path().parts[-2:] == ("syncd", "config.toml")


# --- the token ---------------------------------------------------------------------------------


def test_token_precedence(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "readwise-token").write_text("from-credential")
    env = {"READWISE_TOKEN": "from-env", "MY_TOKEN": "from-my-env"}

    assert (
        resolve_token(ReadwiseConfig(token="inline", token_file=token_file), env, str(credentials))
        == "inline"
    )
    assert (
        resolve_token(ReadwiseConfig(token_file=token_file), env, str(credentials)) == "from-file"
    )
    assert resolve_token(ReadwiseConfig(), env, str(credentials)) == "from-credential"
    assert resolve_token(ReadwiseConfig(), env, str(tmp_path / "no-creds")) == "from-env"
    assert resolve_token(ReadwiseConfig(), env, None) == "from-env"
    assert resolve_token(ReadwiseConfig(token_env="MY_TOKEN"), env, None) == "from-my-env"


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        ("missing-file", "readwise.token_file"),
        ("empty-file", "is empty"),
        ("empty-credential", "systemd credential"),
        ("unset-env", "$READWISE_TOKEN is not set"),
        ("empty-env", "$READWISE_TOKEN is empty"),
        ("spaces", "contains spaces"),
    ],
)
def test_token_errors_name_the_source_not_the_value(
    tmp_path: Path, setup: str, fragment: str
) -> None:
    cfg, env, credentials = ReadwiseConfig(), {}, None
    if setup == "missing-file":
        cfg = ReadwiseConfig(token_file=tmp_path / "nope")
    elif setup == "empty-file":
        (tmp_path / "t").write_text(" \n")
        cfg = ReadwiseConfig(token_file=tmp_path / "t")
    elif setup == "empty-credential":
        (tmp_path / "readwise-token").write_text("")
        credentials = str(tmp_path)
    elif setup == "empty-env":
        env = {"READWISE_TOKEN": "  "}
    elif setup == "spaces":
        env = {"READWISE_TOKEN": f"{SECRET} {SECRET}"}
    with pytest.raises(ConfigError) as caught:
        resolve_token(cfg, env, credentials)
    assert fragment in str(caught.value)
    assert SECRET not in str(caught.value) and caught.value.exit_code == 2


def test_token_never_shown(tmp_path: Path, places: dict[str, str]) -> None:
    toml = f'[readwise]\ntoken = "{SECRET}"\n' + fill(TARGET, places)
    config = load_config(write(tmp_path, toml), environ={})
    assert isinstance(config, Config) and config.readwise.token == SECRET
    for shown in (repr(config), str(config), repr(config.readwise), str(config.readwise)):
        assert SECRET not in shown

    broken = f'[readwise]\ntoken = ["{SECRET}"]\ntokn = "{SECRET}"\n'
    problems = problems_of(write(tmp_path, broken + fill(TARGET, places)))
    assert len(problems) == 2
    assert any("readwise.token: must be a non-empty string, got an array" in p for p in problems)
    assert any('readwise.tokn: unknown key (did you mean "token"?)' in p for p in problems)
    assert SECRET not in "\n".join(problems)


@pytest.mark.parametrize(("toml", "fragment"), BROKEN, ids=[f"{i:02d}" for i in range(len(BROKEN))])
def test_broken_config_exits_2_through_the_cli(
    tmp_path: Path,
    places: dict[str, str],
    toml: str,
    fragment: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from syncd.cli import main

    monkeypatch.setenv("READWISE_TOKEN", "t" * 50)
    path = write(tmp_path, fill(toml, places))
    code = main(["--config", str(path), "--once"])
    err = capsys.readouterr().err
    if fragment.startswith("targets[0].vault: {"):
        # A vault folder that is missing when a pass starts may be an unmounted drive: a vault
        # error (5), decided per pass, not a config error; `syncd check` reports it as well.
        assert code == 5
        assert fill(fragment.split(": ", 1)[1], places) in err
        return
    assert code == 2
    assert str(path) in err and fill(fragment, places) in err
