"""Generator families (seq2seq, causal, classifier), LoRA checkpoints, quantization errors and
export, end to end through the CLI on tiny random models (CPU, seconds each)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from helpers import tiny_args
from lamp_pl.cli import main
from lamp_pl.metrics.lamp import build_metrics
from lamp_pl.tasks import get_task

LORA = '{"r": 4, "alpha": 8, "dropout": 0.0}'


def args_for(model: Path, data_root: Path, tmp_path: Path, task: str, family: str, *extra: str) -> list[str]:
    """`helpers.tiny_args` with `model` as both the model and the data's tokenizer, and a family."""
    return [*tiny_args(model, data_root, tmp_path, task), "--model.family", family, *extra]


def newest(tmp_path: Path, pattern: str) -> Path:
    files = sorted((tmp_path / "runs").rglob(pattern), key=lambda p: p.stat().st_mtime)
    assert files, f"no {pattern} written"
    return files[-1]


def fit_and_test(args: list[str], tmp_path: Path) -> tuple[dict, dict]:
    main(["fit", *args])
    main(["test", *args, "--ckpt_path", str(newest(tmp_path, "last.ckpt"))])
    return (
        json.loads(newest(tmp_path, "predictions_test.json").read_text()),
        json.loads(newest(tmp_path, "metrics_test.json").read_text()),
    )


@pytest.mark.parametrize(
    "family,model,task,lora",
    [
        ("seq2seq", "tiny_t5", "LaMP_2", True),
        ("causal", "tiny_llama", "LaMP_2", False),
        ("causal", "tiny_llama", "LaMP_4", True),
        ("classifier", "tiny_bert", "LaMP_3", False),
        ("classifier", "tiny_llama", "LaMP_2", True),
    ],
)
def test_family_fits_and_tests(family, model, task, lora, data_root, tmp_path, request):
    folder = request.getfixturevalue(model)
    extra = ["--model.peft", LORA] if lora else []
    predictions, metrics = fit_and_test(args_for(folder, data_root, tmp_path, task, family, *extra), tmp_path)
    assert predictions["golds"] and f"test/{get_task(task).monitor}" in metrics
    if family == "classifier":  # CLS-P writes label strings, scored by the ordinary metrics
        assert {g["output"] for g in predictions["golds"]} <= set(get_task(task).labels)
    if lora:  # the checkpoint holds the adapters (and a classifier's head) only
        state = torch.load(newest(tmp_path, "last.ckpt"), map_location="cpu", weights_only=True)["state_dict"]
        assert state and all("lora_" in k or "modules_to_save" in k for k in state if k.startswith("model."))


def causal_model(tiny_llama: Path, **kwargs):
    from lamp_pl.lightning.module import LaMPModel

    model = LaMPModel(
        model_name_or_path=str(tiny_llama), family="causal", task="LaMP_2", num_beams=1, max_new_tokens=5, **kwargs
    )
    model.configure_model()
    model.configure_model()  # idempotent
    return model.eval()


def toy_batch(tokenizer, prompts: list[str], targets: list[str]) -> dict:
    from lamp_pl.pipeline.tokenized import collate

    rows = [
        {
            "input_ids": tokenizer(p)["input_ids"],
            "labels": tokenizer(t)["input_ids"],
            "id": str(i),
            "target": t,
            "retrieved": [],
        }
        for i, (p, t) in enumerate(zip(prompts, targets))
    ]
    return collate(rows, tokenizer.pad_token_id)


PROMPTS = ["description: a long movie about a dog and a city at night", "description: space", "a b c d"]


def test_causal_loss_is_on_target_tokens_only(tiny_llama):
    model = causal_model(tiny_llama)
    batch = toy_batch(model.tokenizer, PROMPTS, ["comedy", "sci-fi", "drama"])
    seq = model.family.training_sequences(batch)
    prompts = model.family.prompt_ids(batch)
    for row, prompt in enumerate(prompts):
        assert prompt[0] == model.tokenizer.bos_token_id
        assert (seq["labels"][row, : len(prompt)] == -100).all()
        assert seq["labels"][row, seq["attention_mask"][row].sum() - 1] == model.tokenizer.eos_token_id
    # A prompt or padding position's prediction has no influence on the loss: its gradient is 0.
    captured = {}

    def keep_logits(module, inputs, out):
        out.retain_grad()
        captured["logits"] = out

    model.model.get_output_embeddings().register_forward_hook(keep_logits)
    loss = model(batch)
    loss.backward()
    grad = captured["logits"].grad.abs().sum(-1)  # position t predicts token t + 1
    predicts_target = torch.zeros_like(grad, dtype=torch.bool)
    predicts_target[:, :-1] = seq["labels"][:, 1:] != -100
    assert (grad[~predicts_target] == 0).all() and (grad[predicts_target] > 0).all()


def test_left_padded_batch_generation_equals_one_by_one(tiny_llama):
    model = causal_model(tiny_llama)
    tok = model.tokenizer
    batched = model.generate(toy_batch(tok, PROMPTS, ["x"] * 3))
    single = [model.generate(toy_batch(tok, [p], ["x"]))[0] for p in PROMPTS]
    assert batched == single


def test_chat_template_wraps_prompt(tiny_llama):
    model = causal_model(tiny_llama, chat_template=True)
    batch = toy_batch(model.tokenizer, PROMPTS[:1], ["comedy"])
    text = model.tokenizer.decode(model.family.prompt_ids(batch)[0], skip_special_tokens=True)
    assert text.startswith("[user]") and text.strip().endswith("[assistant]")
    assert model.family.prompt_ids(batch)[0].count(model.tokenizer.bos_token_id) == 1
    assert len(model.generate(batch)) == 1


def test_classifier_rejects_generation_task(tiny_bert):
    from lamp_pl.lightning.module import LaMPModel

    with pytest.raises(ValueError, match="closed label set"):
        LaMPModel(model_name_or_path=str(tiny_bert), family="classifier", task="LaMP_5")


def test_vocabulary_mismatch_fails_at_start(tiny_t5, tiny_llama):
    from lamp_pl.lightning.module import LaMPModel

    model = LaMPModel(
        model_name_or_path=str(tiny_llama),
        family="causal",
        task="LaMP_2",
        tokenizer=str(tiny_t5),
        random_init={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "vocab_size": 10,
        },
    )
    with pytest.raises(ValueError, match="embedding rows"):
        model.configure_model()


def test_quantization_on_cpu_fails_clearly(tiny_llama, data_root, tmp_path, capsys):
    args = args_for(
        tiny_llama, data_root, tmp_path, "LaMP_2", "causal", "--model.peft", LORA, "--model.quantization", "4bit"
    )
    with pytest.raises(SystemExit) as exit_:  # a user error: one line, exit status 2
        main(["fit", *args])
    assert exit_.value.code == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_classifier_outputs_score_with_existing_metrics():
    task = get_task("LaMP_3")
    metric = build_metrics(task.metric_kind, task.labels)
    metric.update(["1", "5", "3"], ["2", "5", "3"])
    values = metric.compute()
    assert abs(float(values["mae"]) - 1 / 3) < 1e-6


def trainable(ckpt: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"].items()}


class StopAfter(L.Callback):
    """Interrupts a run after `epochs` epochs (same config, so the same LR schedule)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


def test_lora_resume_equals_uninterrupted_run(tiny_llama, data_root, tmp_path):
    base = [
        "--model.peft",
        LORA,
        "--trainer.limit_val_batches",
        "0",
        "--trainer.limit_train_batches",
        "2",
        "--trainer.max_epochs",
        "2",
    ]
    main(["fit", *args_for(tiny_llama, data_root, tmp_path / "whole", "LaMP_2", "causal", *base)])
    split = args_for(tiny_llama, data_root, tmp_path / "split", "LaMP_2", "causal", *base)
    stop = json.dumps({"class_path": f"{__name__}.StopAfter", "init_args": {"epochs": 1}})
    main(["fit", *split, "--trainer.callbacks", stop])
    ckpt = newest(tmp_path / "split", "last.ckpt")
    assert torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"] == 2
    main(["fit", *split, "--ckpt_path", str(ckpt)])
    a, b = trainable(newest(tmp_path / "whole", "last.ckpt")), trainable(newest(tmp_path / "split", "last.ckpt"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("lora", [True, False])
def test_export_reproduces_predictions(lora, tiny_llama, data_root, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lamp_pl.lightning.datamodule import LaMPDataModule
    from lamp_pl.lightning.export import export
    from lamp_pl.retrieval import RetrievalConfig

    extra = ["--model.peft", LORA] if lora else []
    args = args_for(tiny_llama, data_root, tmp_path, "LaMP_2", "causal", *extra)
    predictions, _ = fit_and_test(args, tmp_path)
    out = export(None, str(newest(tmp_path, "last.ckpt")), tmp_path / "export")
    assert (out / "README.md").read_text().count("LaMP_2") and (out / "lamp_pl_config.yaml").is_file()
    tokenizer, model = AutoTokenizer.from_pretrained(out), AutoModelForCausalLM.from_pretrained(out).eval()
    data = LaMPDataModule(
        task="LaMP_2",
        data_dir=str(data_root),
        cache_dir=str(tmp_path / "cache"),
        tokenizer=str(tiny_llama),
        k=2,
        retrieval=RetrievalConfig(retriever="bm25"),
        max_input_length=96,
        max_target_length=16,
        test_split="test",
    )
    prompts = data.prompts("test")[:4]
    expected = {g["id"]: g["output"] for g in predictions["golds"]}
    for question_id, prompt in zip(data._tokenized("test", build=False).ids, prompts):
        ids = tokenizer(prompt, truncation=True, max_length=96, return_tensors="pt")  # the data budget
        out_ids = model.generate(**ids, max_new_tokens=6, num_beams=2, do_sample=False)
        text = tokenizer.decode(out_ids[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        assert text == expected[question_id]


def test_zero_shot_causal_test_and_gradient_checkpointing(tiny_llama, data_root, tmp_path):
    args = args_for(tiny_llama, data_root, tmp_path, "LaMP_2", "causal")
    main(["test", *args])  # no checkpoint: the pretrained causal LM as it is
    assert json.loads(newest(tmp_path, "predictions_test.json").read_text())["golds"]
    main(
        ["fit", *args, "--model.peft", LORA, "--model.gradient_checkpointing", "true", "--trainer.fast_dev_run", "true"]
    )


def test_fsdp_policy_wraps_each_transformer_block(tiny_llama):
    from lamp_pl.models.adapters import fsdp_block_policy

    model = causal_model(tiny_llama, peft={"r": 2})
    wrapped = [type(m).__name__ for m in model.model.modules() if fsdp_block_policy(m, False, 0)]
    assert wrapped == ["LlamaDecoderLayer"] * 2
