"""The `lamp-pl` command tree: one registry, help from docstrings, light start-up."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lamp_pl.cli import COMMANDS, TRAINING, build_parser, load, main
from lamp_pl.cli.tree import plain_help

ROOT = Path(__file__).resolve().parents[2]


def loadable(name: str):
    """The command's function, or skip when its module is not in this checkout (registered ahead)."""
    module = COMMANDS[name].target.partition(":")[0]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and module.startswith(error.name):
            pytest.skip(f"{module} is not in this checkout")
        raise
    return load(COMMANDS[name])


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )


def test_help_lists_every_command_without_warnings_or_lightning():
    done = run_python(
        "import sys; from lamp_pl.cli import main; code = main(['--help']); "
        "heavy = [m for m in ('lightning', 'torch', 'transformers') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(code)"
    )
    assert done.returncode == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    for name, command in COMMANDS.items():
        assert any(line.split()[:1] == [name] and plain_help(command.summary) in line for line in lines), name
    assert "HEAVY []" in lines


@pytest.mark.parametrize("name", [n for n in COMMANDS if n not in TRAINING and not COMMANDS[n].raw])
def test_each_command_help_comes_from_its_docstring(name):
    function = loadable(name)
    summary = inspect.getdoc(function).splitlines()[0]
    assert summary == COMMANDS[name].summary, "keep the registry's summary equal to the docstring's"
    text = build_parser(name, function).format_help()
    # argparse wraps lines after a hyphen too ("re-\nfit"), so join those back.
    shown = " ".join(text.split()).replace("- ", "-")
    assert text.startswith(f"usage: lamp-pl {name}") and plain_help(summary) in shown
    assert "`" not in text and "<class" not in text, "help is plain text (no reST quotes, no <class 'X'>)"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_is_a_function_of_the_command_floor(name):
    """Each target is defined in `lamp_pl/cli/` (a thin typed wrapper over the library), not merely
    re-exported there: the function's own `__module__` is a module of the floor."""
    module = COMMANDS[name].target.partition(":")[0]
    assert module.startswith("lamp_pl.cli."), f"{name}: {module} is not on the command floor"
    assert load(COMMANDS[name]).__module__.startswith("lamp_pl.cli."), f"{name}: defined outside lamp_pl.cli"


def test_grid_summary_matches_its_docstring(capsys):
    assert inspect.getdoc(load(COMMANDS["grid"])).splitlines()[0] == COMMANDS["grid"].summary
    with pytest.raises(SystemExit):
        main(["grid", "--help"])
    assert "lamp-pl grid" in capsys.readouterr().out


def test_unknown_command_lists_the_tree(capsys):
    assert main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


def test_data_commands_run_without_lightning(tmp_path):
    """synthetic then check-data, as a user types them; neither imports Lightning."""
    code = (
        f"import sys; from lamp_pl.cli import main; "
        f"assert main(['synthetic', '--dest', {str(tmp_path)!r}, '--users', '5']) == 0; "
        f"assert main(['check-data', '--task', 'LaMP_2', '--data_dir', {str(tmp_path)!r}, '--split+', 'dev']) == 0; "
        f"print('LIGHTNING', 'lightning' in sys.modules)"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.splitlines()[0] == str(tmp_path / "LaMP_2") and "LIGHTNING False" in out
    summary = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert summary["task"] == "LaMP_2" and list(summary["splits"]) == ["dev"]


def test_check_data_error_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:  # a LaMPError: one line, exit status 2
        main(["check-data", "--task", "LaMP_2", "--data-dir", str(tmp_path)])  # dashes work too
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lamp-pl check-data: error:") and err.count("\n") == 1
