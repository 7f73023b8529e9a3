"""Every `lamp-pl` command documents every option from its docstring, and its command lines (as a
shell user types them: dashes, bare flags, space-separated lists, positionals) parse."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest
from docstring_parser import parse

from lamp_pl.cli import COMMANDS, TRAINING, build_parser, load, main
from lamp_pl.cli.tree import parse_command, type_hints

ROOT = Path(__file__).resolve().parents[2]
# The config sections a command receives as objects: documented by their classes' docstrings.
SECTIONS = {"data", "model"}
# Settings of the library functions that only a Python caller passes (objects, process ranks).
PYTHON_ONLY = {"datamodule", "generator", "rank", "world_size", "trainer"}
# The library function each command wrapper calls, and the wrapper's names for renamed settings.
WRAPS = {
    "score-items": ("lamp_pl.learned.scoring:score_items", {}),
    "attribute": ("lamp_pl.learned.attribution:attribute", {}),
    "export": ("lamp_pl.lightning.export:export", {}),
    "convert": ("lamp_pl.data.annotators:convert_goemotions", {"list_labels": "label_list"}),
    "evaluate": ("lamp_pl.evaluation.score:score_predictions", {"judge": "judge_model"}),
    "fit-users": ("lamp_pl.adapters.fit:fit_users", {}),
    "fit-task-adapter": ("lamp_pl.adapters.two_stage:fit_task_adapter", {}),
    "test-users": ("lamp_pl.adapters.evaluate:test_users", {}),
    "fit-retriever": ("lamp_pl.learned.ropg:train_retriever", {"objective": "temperature"}),
    "fit-selector": ("lamp_pl.learned.selector:train_selector", {"records": "train"}),
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
        settings = type_hints(function)[param]
        if dataclasses.is_dataclass(settings):  # a settings section: each field documents itself
            for field in dataclasses.fields(settings):
                assert helps.get(f"{param}.{field.name}"), f"lamp-pl {name} --{param}.{field.name}"
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
    library = function_of(target)
    for param in inspect.signature(library).parameters:
        if param in PYTHON_ONLY or renamed.get(param, param) in wrapper:
            continue
        # Else a settings object of the library (the adapters' `AdapterJob`): each of its fields.
        settings = type_hints(library)[param]
        assert dataclasses.is_dataclass(settings), f"lamp-pl {name} does not expose {param!r} of {target}"
        for field in dataclasses.fields(settings):
            assert field.name in wrapper, f"lamp-pl {name} does not expose {param}.{field.name} of {target}"


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
    config = "demo"  # a shipped config, by name
    _, args = parse_command(
        "fit-users",
        load(COMMANDS["fit-users"]),
        ["--config", str(config), "--out", "adapters", "--dropout", "0.1", "--seed", "3", "--data.task", "LaMP_3"],
    )
    assert args.model.task == "LaMP_3" and args.model.tokenizer == args.data.tokenizer == "demo_data/tokenizer"
    assert args.model.lr == 0.005 and args.lora.dropout == 0.1 and args.training.seed == 3


@pytest.mark.parametrize(
    "name,flat,dotted",
    [
        (
            "fit-users",
            ["--lr", "0.01", "--epochs", "2", "--batch-size", "4", "--seed", "3", "--r", "4", "--dropout", "0.1"],
            ["--training.lr", "0.01", "--training.epochs", "2", "--training.batch_size", "4", "--training.seed", "3"]
            + ["--lora.r", "4", "--lora.dropout", "0.1"],
        ),
        (
            "fit-selector",
            ["--lr=0.01", "--max_epochs", "2", "--batch_size", "4", "--seed", "3"],
            ["--training.lr=0.01", "--training.epochs", "2", "--training.batch_size", "4", "--training.seed", "3"],
        ),
        (
            "fit-retriever",
            ["--lr", "0.01", "--max-epochs", "2", "--warmup_ratio", "0", "--normalize", "--no_dropout"],
            ["--training.lr", "0.01", "--training.epochs", "2", "--training.warmup_ratio", "0", "--normalize"]
            + ["true", "--dropout", "false"],
        ),
    ],
)
def test_training_settings_take_the_old_flat_and_the_new_dotted_options(name, flat, dotted):
    """`--lr` (what the commands always took) and `--training.lr` (the `TrainSettings` section
    `--help` lists) are one option; the fields left alone keep the command's own defaults."""
    required = {
        "fit-users": ["--config", "demo", "--out", "adapters"],
        "fit-selector": ["--train", "u.jsonl", "--encoder", "e", "--out_dir", "o"],
        "fit-retriever": ["--train_utilities", "u.jsonl", "--encoder", "e", "--out_dir", "o"],
    }[name]
    function = load(COMMANDS[name])
    _, old = parse_command(name, function, [*required, *flat])
    _, new = parse_command(name, function, [*required, *dotted])
    assert old == new
    assert old.training.lr == 0.01 and old.training.epochs == 2
    defaults = {"fit-users": 0.0, "fit-selector": 0.1, "fit-retriever": 0.0}[name]
    assert old.training.warmup_ratio == defaults
    if name == "fit-users":
        assert (old.lora.r, old.lora.alpha, old.lora.dropout) == (4, 16, 0.1)  # alpha: the adapters' default


def test_adapter_commands_keep_their_defaults_apart_from_model_peft():
    """fit-users trains LoRA without dropout at 1e-3, as it always did; `model.peft`'s
    `LoraSettings` keeps its dropout of 0.05."""
    from lamp_pl.models.adapters import LoraSettings

    _, args = parse_command("fit-users", load(COMMANDS["fit-users"]), ["--config", "demo", "--out", "a"])
    assert (args.lora.dropout, args.training.lr, args.training.epochs, args.training.batch_size) == (0.0, 1e-3, 5, 8)
    assert LoraSettings().dropout == 0.05
    _, task = parse_command(
        "fit-task-adapter",
        load(COMMANDS["fit-task-adapter"]),
        ["--config", "demo", "--out", "a"],
    )
    assert task.training.epochs == 2 and task.lora.dropout == 0.0


def test_convert_runs_from_the_command_line(tmp_path, capsys):
    """`lamp-pl convert goemotions --raw FILE --out DIR` on the annotator demo's raw CSV."""
    from lamp_pl.demo.annotators import AnnotatorSpec, write_raw_csv

    raw = write_raw_csv(tmp_path / "raw.csv", AnnotatorSpec(annotators=12, texts=60, annotations_per_annotator=20))
    code = main(["convert", "goemotions", "--raw", str(raw), "--out", str(tmp_path / "out"), "--min-annotations", "2"])
    assert code == 0 and (tmp_path / "out" / "GoEmotions.json").is_file()
    assert '"annotators_kept"' in capsys.readouterr().out


def test_attribute_docstrings_are_read_for_help_only(capsys):
    """A dataclass field's attribute docstring is in `--help` (fit's and a typed command's), while
    a run that prints no help skips reading them (it parses every class's source) and still parses."""
    from lamp_pl.cli.config import help_wanted

    doc = "Ranked items cached per question"  # RetrievalConfig.k_max's attribute docstring
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert doc in " ".join(capsys.readouterr().out.split())
    assert help_wanted(["fit", "-h"]) and help_wanted(["test", "--print_config=comments"])
    assert not help_wanted(["test", "--config", "x.yaml", "--ckpt_path", "best"])
    function = load(COMMANDS["index"])
    documented = {a.dest: a.help or "" for a in build_parser("index", function)._actions}
    bare = {a.dest: a.help or "" for a in build_parser("index", function, documented=False)._actions}
    assert doc in " ".join(documented["data.retrieval.k_max"].split())
    assert doc not in bare["data.retrieval.k_max"] and bare.keys() == documented.keys()


def test_a_training_command_builds_its_own_parser_only(tiny_t5, data_root, tmp_path):
    """`lamp-pl test` parses with Lightning's `test` subcommand alone (each of the four costs a
    signature walk of the trainer, model and data classes); a CLI with none named has all four."""
    from helpers import base_args
    from lamp_pl.cli.train import LaMPCLI
    from lamp_pl.lightning.datamodule import LaMPDataModule
    from lamp_pl.lightning.module import LaMPModel

    class Parsed(Exception):
        pass

    class Probe(LaMPCLI):
        def _set_seed(self) -> None:  # the first step after parsing (the inputs are checked in it)
            raise Parsed(sorted(self._subcommand_parsers), self.config.subcommand)

    args = ["test", *base_args(tiny_t5, data_root, tmp_path / "cache", "LaMP_2"), "--ckpt_path", "best"]
    for subcommand, built in (("test", ["test"]), (None, ["fit", "predict", "test", "validate"])):
        with pytest.raises(Parsed) as parsed:
            Probe(LaMPModel, LaMPDataModule, args=args, subcommand=subcommand)
        assert parsed.value.args == (built, "test")


def test_a_recipe_retriever_section_splits_into_training_settings_and_the_rest():
    """`ropg-kd` recipes keep their flat `retriever:` keys (`configs/LaMP_2/ropg_kd.yml`)."""
    from lamp_pl.lightning.settings import ENCODER_TRAINING, TrainSettings

    section = {"batch_size": 20, "max_epochs": 2, "lr": 1.0e-4, "group_by_user": True, "max_length": 64}
    training, rest = ENCODER_TRAINING.take(section)
    assert training == TrainSettings(lr=1.0e-4, batch_size=20, epochs=2)
    assert rest == {"group_by_user": True, "max_length": 64}
