"""`model.attn_implementation`: transformers' attention path of the generator (`LaMPModel`), passed
to `from_pretrained` when set, transformers' default when null; a bad value is a one-line error."""

from __future__ import annotations

import pytest
import yaml

from helpers import base_args
from lamp_pl.cli import main
from lamp_pl.errors import ConfigError
from lamp_pl.lightning.module import LaMPModel


def built(folder, **kwargs) -> LaMPModel:
    """The tiny T5's `LaMPModel`, its network built (no training)."""
    model = LaMPModel(model_name_or_path=str(folder), task="LaMP_2", tokenizer=str(folder), **kwargs)
    model.configure_model()
    return model


def test_eager_reaches_the_loaded_network(tiny_t5):
    model = built(tiny_t5, attn_implementation="eager")
    assert model.model.config._attn_implementation == "eager"
    assert model.hparams["attn_implementation"] == "eager"  # saved, so a checkpoint reloads with it


def test_null_keeps_the_default_of_transformers(tiny_t5):
    from transformers import AutoModelForSeq2SeqLM

    plain = AutoModelForSeq2SeqLM.from_pretrained(str(tiny_t5)).config._attn_implementation
    assert built(tiny_t5).model.config._attn_implementation == plain


def test_a_random_init_network_takes_it_too(tiny_t5):
    layers = {"d_model": 16, "d_kv": 4, "d_ff": 32, "num_layers": 1, "num_heads": 2}
    model = built(tiny_t5, random_init=layers, attn_implementation="eager")
    assert model.model.config._attn_implementation == "eager"


def test_an_unknown_name_is_refused_before_anything_loads(tiny_t5):
    with pytest.raises(ConfigError, match=r"model\.attn_implementation: 'bogus' is not .*'eager'"):
        LaMPModel(model_name_or_path=str(tiny_t5), task="LaMP_2", tokenizer=str(tiny_t5), attn_implementation="bogus")


def test_an_implementation_the_model_lacks_keeps_the_message_of_transformers(tiny_t5):
    """T5 has no FlashAttention: transformers says so, named as the setting that asked for it."""
    with pytest.raises(ConfigError, match=r"model\.attn_implementation 'flash_attention_2': .*Flash Attention"):
        built(tiny_t5, attn_implementation="flash_attention_2")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("config", "eager"), ("override", "sdpa"), (None, None)],
    ids=["config", "override", "unset"],
)
def test_the_cli_takes_it_from_a_config_or_an_override(given, expected, tiny_t5, data_root, tmp_path, capsys):
    config = tmp_path / "attention.yaml"
    config.write_text(yaml.safe_dump({"model": {"attn_implementation": "eager"}}))
    extra = {"config": ["--config", str(config)], "override": ["--model.attn_implementation", "sdpa"], None: []}
    args = ["fit", *base_args(tiny_t5, data_root, tmp_path / "cache", "LaMP_2"), *extra[given], "--print_config"]
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code in (0, None), capsys.readouterr().err
    assert yaml.safe_load(capsys.readouterr().out)["model"]["attn_implementation"] == expected


def test_the_cli_says_what_is_wrong_in_one_line(tiny_t5, data_root, tmp_path, capsys):
    args = ["validate", *base_args(tiny_t5, data_root, tmp_path / "cache", "LaMP_2")]
    with pytest.raises(SystemExit) as done:
        main([*args, "--model.attn_implementation", "bogus"])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert "error: model.attn_implementation: 'bogus' is not" in err and "Traceback" not in err
