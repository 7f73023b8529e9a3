"""Every config file, and every `lamp-pl` command line the README and the docs show, parses (nothing runs).

The command lines are read from the fenced shell code blocks (```bash, ```sh, ```shell, ```console)
of README.md and of every page under docs/ (lines starting with `lamp-pl`, split on `&&`), so a
documented line that stops parsing fails here. Prose and inline code are not read. docs/notes/
(helpers' drafts, left out of the site) is left out here too. `LAMP_PL_README` points the test at
another Markdown file (e.g. a draft of the README).
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import yaml

from lamp_pl.cli import COMMANDS, TRAINING, load, main
from lamp_pl.cli.tree import parse_command
from lamp_pl.shipped import shipped_root

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = shipped_root()  # lamp_pl/configs, package data
# recipes/ holds grid files (`lamp-pl grid --recipe`), not LightningCLI configs: tests/studygrid/test_grid_recipes.py
# loads every one of them.
CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if p.relative_to(CONFIG_DIR).parts[0] != "recipes")
README = Path(os.environ.get("LAMP_PL_README", ROOT / "README.md"))
DOCS = ROOT / "docs"
DOC_PAGES = sorted(p for p in DOCS.rglob("*.md") if p.relative_to(DOCS).parts[0] != "notes") if DOCS.is_dir() else []
# A fenced shell block, its fence possibly indented (inside a list item): its body.
SHELL_BLOCK = re.compile(r"^([ \t]*)```(?:bash|sh|shell|console)[ \t]*\n(.*?)^\1```", flags=re.S | re.M)


def readme_commands(text: str) -> list[list[str]]:
    """`lamp-pl ...` commands of the fenced shell blocks, one argv (without `lamp-pl`) each."""
    commands = []
    for _, block in SHELL_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part.strip().removeprefix("$ "), comments=True)
                if words[:1] == ["lamp-pl"]:
                    commands.append(words[1:])
    return commands


README_COMMANDS = readme_commands(README.read_text()) if README.is_file() else []
# (page, argv) for every command line of the docs pages.
DOCS_COMMANDS = [
    (page.relative_to(ROOT).as_posix(), argv) for page in DOC_PAGES for argv in readme_commands(page.read_text())
]


def parse_training(args: list[str], capsys) -> dict:
    """Parse a fit/validate/test/predict command line with `--print_config`; the printed config."""
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_every_config_parses(config, capsys):
    """Each file is valid against the CLI (types, names, links), on top of a task when it is a group."""
    base = (
        []
        if config.parent == CONFIG_DIR and config.name == "demo.yaml"
        else ["--config", str(CONFIG_DIR / ("demo.yaml" if config.name == "demo_k0.yaml" else "task/LaMP_2.yaml"))]
    )
    printed = parse_training(["fit", *base, "--config", str(config)], capsys)
    # Linked arguments are set once, in the data section, and derived for the model.
    assert "task" not in printed["model"] and "tokenizer" not in printed["model"]
    assert printed["data"]["task"] and printed["data"]["tokenizer"]


def test_groups_compose_each_overriding_only_its_own(capsys):
    printed = parse_training(
        [
            "fit",
            "--config",
            str(CONFIG_DIR / "task/LaMP_4.yaml"),
            "--config",
            str(CONFIG_DIR / "retriever/none.yaml"),
            "--config",
            str(CONFIG_DIR / "trainer/cpu.yaml"),
            "--config",
            str(CONFIG_DIR / "logger/csv.yaml"),
        ],
        capsys,
    )
    assert printed["data"]["task"] == "LaMP_4" and printed["trainer"]["max_epochs"] == 10
    assert printed["data"]["k"] == 0 and printed["data"]["retrieval"]["retriever"] == "none"
    assert printed["trainer"]["accelerator"] == "cpu"
    assert printed["trainer"]["logger"]["class_path"].endswith("CSVLogger")


def test_group_files_own_disjoint_sections():
    """A group file sets only its own keys, so the order of `--config` files never matters between groups."""
    owned = {
        "task": {"trainer.max_epochs", "data.task", "data.data_dir", "data.source"},
        "retriever": {"data.retrieval", "data.k"},
        "model": {"model", "data.tokenizer"},
        "trainer": {"trainer"},
        "logger": {"trainer.logger"},
    }
    for group, prefixes in owned.items():
        for path in sorted((CONFIG_DIR / group).glob("*.yaml")):
            keys = _leaf_keys(yaml.safe_load(path.read_text()))
            stray = [k for k in keys if not any(k == p or k.startswith(p + ".") for p in prefixes)]
            assert not stray, f"{path.relative_to(CONFIG_DIR)} sets {stray}, outside its group"
            if group == "trainer":
                assert not any(k.startswith("trainer.logger") for k in keys)


def _leaf_keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        keys += _leaf_keys(value, name + ".") if isinstance(value, dict) and key not in ("logger",) else [name]
    return keys


def test_readme_shows_commands():
    if not README.is_file():
        pytest.skip("no README.md")
    assert README_COMMANDS, f"no `lamp-pl` command lines in {README}'s bash blocks"


def test_docs_show_commands():
    """The docs pages' commands are found (a change of fence style would otherwise test nothing)."""
    assert DOCS.is_dir(), f"no {DOCS}"
    assert len(DOCS_COMMANDS) >= 20, f"only {len(DOCS_COMMANDS)} `lamp-pl` command lines in docs/*.md shell blocks"
    pages = {page for page, _ in DOCS_COMMANDS}
    assert "docs/getting-started/first-run.md" in pages


def test_extraction_reads_fenced_shell_blocks_only():
    text = (
        "Prose `lamp-pl fit --bogus` is not read.\n"
        "```bash\nlamp-pl index --config a \\\n  --data.k 2  # a comment\npython x && lamp-pl demo\n```\n"
        "```text\nlamp-pl not-a-command\n```\n"
        "- a list item:\n\n  ```console\n  $ lamp-pl inspect --id 3\n  ```\n"
    )
    assert readme_commands(text) == [["index", "--config", "a", "--data.k", "2"], ["demo"], ["inspect", "--id", "3"]]


@pytest.mark.parametrize("argv", README_COMMANDS, ids=lambda a: " ".join(a)[:80])
def test_readme_command_line_parses(argv, capsys, monkeypatch):
    command_line_parses(argv, "README", capsys, monkeypatch)


@pytest.mark.parametrize(
    ("page", "argv"), DOCS_COMMANDS, ids=[f"{page[5:]}: {' '.join(argv)}"[:90] for page, argv in DOCS_COMMANDS]
)
def test_docs_command_line_parses(page, argv, capsys, monkeypatch):
    command_line_parses(argv, page, capsys, monkeypatch)


def config_names_resolved(args: list[str]) -> list[str]:
    """`--config demo` as the shipped file it names, as `lamp-pl` resolves it before parsing
    (`lamp_pl.shipped`; where configs are not yet resolved by name, the arguments as given)."""
    try:
        from lamp_pl.shipped import resolve_config_args
    except ImportError:
        return args
    return resolve_config_args(args)


def command_line_parses(argv: list[str], where: str, capsys, monkeypatch) -> None:
    """Parse one documented command line as `lamp-pl` would (nothing runs)."""
    monkeypatch.chdir(ROOT)
    name, args = argv[0], argv[1:]
    if name in ("-h", "--help"):  # `lamp-pl --help`: the command list
        assert main(argv) == 0 and "commands:" in capsys.readouterr().out
        return
    assert name in COMMANDS, f"{where} shows an unknown command: lamp-pl {name}"
    if name in TRAINING:
        parse_training(argv, capsys)
    elif COMMANDS[name].raw:  # grid: its own argparse; its config files must parse as `fit` reads them
        configs = [a for flag, a in zip(args, args[1:]) if flag == "--config"]
        parse_training(["fit", *[a for c in configs for a in ("--config", c)]], capsys)
    else:  # as `lamp-pl` parses it (config names, dashes, flags, lists)
        parse_command(name, load(COMMANDS[name]), config_names_resolved(args))
