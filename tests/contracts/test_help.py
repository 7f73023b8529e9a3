"""Every `lamp-pl` command documents every option from its docstring, and its command lines (as a
shell user types them: dashes, bare flags, space-separated lists, positionals) parse."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
from docstring_parser import parse

from lamp_pl.cli import COMMANDS, TRAINING, build_parser, load, main
from lamp_pl.cli.tree import parse_command

ROOT = Path(__file__).resolve().parents[2]
# The config sections a command receives as objects: documented by their classes' docstrings.
SECTIONS = {"data", "model"}
# Settings of the library functions that only a Python caller passes (objects, process ranks).
PYTHON_ONLY = {"datamodule", "generator", "rank", "world_size"}
# The library function each command wrapper calls, and the wrapper's names for renamed settings.
WRAPS = {
    "score-items": ("lamp_pl.learned.scoring:score_items", {}),
    "attribute": ("lamp_pl.learned.attribution:attribute", {}),
    "export": ("lamp_pl.lightning.export:export", {}),
    "convert": ("lamp_pl.data.annotators:convert_goemotions", {"list_labels": "label_list"}),
}
TYPED = [name for name, command in COMMANDS.items() if name not in TRAINING and not command.raw]


def function_of(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("name", TYPED)
def test_help_documents_every_parameter(name, capsys):
    function = load(COMMANDS[name])
    described = {p.arg_name: (p.description or "").strip() for p in parse(inspect.getdoc(function) or "").params}
    helps = {action.dest: action.help for action in build_parser(name, function)._actions}
    for param in inspect.signature(function).parameters:
        assert described.get(param), f"lamp-pl {name}: {param!r} has no description in the docstring's Args"
        if param in SECTIONS:
            assert f"{param}.task" in helps or f"{param}.model_name_or_path" in helps, f"{name}: no {param} section"
            continue
        assert helps.get(param) and described[param].split()[0] in helps[param], f"lamp-pl {name} --{param}"
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0 and f"usage: lamp-pl {name}" in capsys.readouterr().out


@pytest.mark.parametrize("name", [n for n, c in COMMANDS.items() if c.raw])
def test_raw_command_help_documents_every_option(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    options = [line.split()[0] for line in out.splitlines() if line.startswith("  --")]
    assert options and all(line.split(maxsplit=1)[1:] for line in out.splitlines() if line.startswith("  --"))


@pytest.mark.parametrize("name", TRAINING)
def test_training_help_lists_the_sections(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "--data.k" in out and "--model.lr" in out and "--trainer" in out


@pytest.mark.parametrize("name", sorted(WRAPS))
def test_wrappers_expose_every_setting_of_the_library(name):
    target, renamed = WRAPS[name]
    wrapper = inspect.signature(load(COMMANDS[name])).parameters
    for param in inspect.signature(function_of(target)).parameters:
        if param not in PYTHON_ONLY:
            assert renamed.get(param, param) in wrapper, f"lamp-pl {name} does not expose {param!r} of {target}"


def test_shell_style_command_lines_parse():
    convert = load(COMMANDS["convert"])
    _, args = parse_command(
        "convert",
        convert,
        ["goemotions", "--raw", "a.csv", "b.csv", "--out", "o", "--min-annotations", "3", "--no-label-list"],
    )
    assert args.dataset == "goemotions" and [str(p) for p in args.raw] == ["a.csv", "b.csv"]
    assert args.min_annotations == 3 and args.label_list is False
    _, args = parse_command(
        "export", load(COMMANDS["export"]), ["--ckpt_path", "x.ckpt", "--out", "o", "--adapter-only"]
    )
    assert args.adapter_only is True and str(args.ckpt_path) == "x.ckpt"


def test_fit_users_reads_the_linked_data_and_model_sections():
    """The model section takes the data section's task and tokenizer, as `fit` links them."""
    config = ROOT / "configs" / "demo.yaml"
    _, args = parse_command(
        "fit-users",
        load(COMMANDS["fit-users"]),
        ["--config", str(config), "--out", "adapters", "--dropout", "0.1", "--seed", "3", "--data.task", "LaMP_3"],
    )
    assert args.model.task == "LaMP_3" and args.model.tokenizer == args.data.tokenizer == "demo_data/tokenizer"
    assert args.model.lr == 0.005 and args.dropout == 0.1 and args.seed == 3


def test_convert_runs_from_the_command_line(tmp_path, capsys):
    """`lamp-pl convert goemotions --raw FILE --out DIR` on the annotator demo's raw CSV."""
    from lamp_pl.demo.annotators import AnnotatorSpec, write_raw_csv

    raw = write_raw_csv(tmp_path / "raw.csv", AnnotatorSpec(annotators=12, texts=60, annotations_per_annotator=20))
    code = main(["convert", "goemotions", "--raw", str(raw), "--out", str(tmp_path / "out"), "--min-annotations", "2"])
    assert code == 0 and (tmp_path / "out" / "GoEmotions.json").is_file()
    assert '"annotators_kept"' in capsys.readouterr().out
