"""Every config file, and every `lamp-pl` command line the README shows, parses (nothing runs).

The README's command lines are read from its ```bash blocks (lines starting with `lamp-pl`, split
on `&&`), so a documented line that stops parsing fails here. `LAMP_PL_README` points the test at
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

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "configs"
# configs/recipes/ holds grid files (`lamp-pl grid --recipe`), not LightningCLI configs: tests/studygrid/test_grid_recipes.py
# loads every one of them.
CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if p.relative_to(CONFIG_DIR).parts[0] != "recipes")
README = Path(os.environ.get("LAMP_PL_README", ROOT / "README.md"))


def readme_commands(text: str) -> list[list[str]]:
    """`lamp-pl ...` commands of the ```bash blocks, one argv (without `lamp-pl`) each."""
    commands = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words[:1] == ["lamp-pl"]:
                    commands.append(words[1:])
    return commands


README_COMMANDS = readme_commands(README.read_text()) if README.is_file() else []


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
            assert not stray, f"{path.relative_to(ROOT)} sets {stray}, outside its group"
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


@pytest.mark.parametrize("argv", README_COMMANDS, ids=lambda a: " ".join(a)[:80])
def test_readme_command_line_parses(argv, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    name, args = argv[0], argv[1:]
    assert name in COMMANDS, f"README shows an unknown command: lamp-pl {name}"
    if name in TRAINING:
        parse_training(argv, capsys)
    elif COMMANDS[name].raw:  # grid: its own argparse; its config files must parse as `fit` reads them
        configs = [a for flag, a in zip(args, args[1:]) if flag == "--config"]
        parse_training(["fit", *[a for c in configs for a in ("--config", c)]], capsys)
    else:
        parse_command(name, load(COMMANDS[name]), args)  # as `lamp-pl` parses it (dashes, flags, lists)
