"""Per-annotator configs end to end (LM-P, Q-NS) and per-user adapters (fit, resume, swap)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lamp_pl.adapters import fit_users
from lamp_pl.adapters.base import AdapterJob, add_lora_slot, build_base, set_lora_state
from lamp_pl.adapters.examples import item_to_example, user_examples
from lamp_pl.adapters.store import load_adapter, read_settings
from lamp_pl.data.lamp import LaMPQuestion, load_split
from lamp_pl.demo.annotators import AnnotatorSpec, write_demo
from lamp_pl.lightning.settings import TrainSettings
from lamp_pl.models.adapters import LoraSettings
from lamp_pl.shipped import resolve_config
from lamp_pl.tasks import get_task

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path]:
    """Synthetic annotator data (converted) and a config of a tiny T5 over it."""
    root = tmp_path_factory.mktemp("annotators")
    write_demo(root, AnnotatorSpec(annotators=6, texts=60, annotations_per_annotator=16, sparse_annotators=1))
    config = yaml.safe_load(Path(resolve_config("annotators/demo")).read_text())
    config["trainer"].update(
        max_epochs=1,
        default_root_dir=str(root / "runs"),
        limit_train_batches=2,
        enable_checkpointing=True,
        logger=False,
    )
    config["model"].update(model_name_or_path=str(root / "t5"), max_new_tokens=6)
    config["data"].update(
        task=str(root / "data/GoEmotions.json"),
        data_dir=str(root / "data"),
        cache_dir=str(root / "cache"),
        tokenizer=str(root / "t5"),
        max_input_length=96,
        batch_size=8,
    )
    path = root / "demo.yaml"
    path.write_text(yaml.safe_dump(config))
    return root, path


@pytest.mark.parametrize(
    "method",
    [
        ["--data.k", "0", "--data.retrieval.retriever", "none", "--data.prompt.user_context", "user_id"],  # LM-P
        ["--data.k", "3", "--data.retrieval.retriever", "bm25"],  # Q-NS
        # CLS-P: a multi-label (sigmoid) classification head on the same backbone, with the id
        [
            "--model.family",
            "classifier",
            "--data.k",
            "0",
            "--data.retrieval.retriever",
            "none",
            "--data.prompt.user_context",
            "user_id",
        ],
    ],
    ids=["LM-P", "Q-NS", "CLS-P"],
)
def test_per_annotator_fit_and_test(demo, method: list[str]) -> None:
    from lamp_pl.cli import main

    root, config = demo
    run = root / ("cls_p" if "classifier" in method else "lm_p" if "user_id" in method else "q_ns")
    common = ["--config", str(config), *method, "--trainer.default_root_dir", str(run)]
    main(["fit", *common])
    main(["test", *common])
    metrics = json.loads(next(run.rglob("metrics_test.json")).read_text())
    assert {"test/f1_macro", "test/f1_micro", "test/exact_match"} <= set(metrics)
    if "classifier" in method:  # label strings, as the generators write them
        labels = set(get_task(str(root / "data/GoEmotions.json")).labels)
        outputs = [g["output"] for g in json.loads(next(run.rglob("predictions_test.json")).read_text())["golds"]]
        assert outputs and all(o == "none" or set(o.split(", ")) <= labels for o in outputs)


def test_item_to_example_covers_lamp_and_annotator_tasks(demo) -> None:
    root, _ = demo
    question = LaMPQuestion("q", "Generate a headline for the following article: x", [])
    assert item_to_example(get_task("LaMP_4"), {"text": "body", "title": "Head"}, question) == (
        "Generate a headline for the following article: body",
        "Head",
    )
    task = get_task(str(root / "data/GoEmotions.json"))
    questions = load_split(root / "data", task, "test")
    pairs = user_examples(task, questions)
    asked = {q.id for q in questions}
    first = questions[0]
    assert pairs[first.user] and all(not text.startswith("x") for text, _ in pairs[first.user])
    item = next(i for i in first.profile if i["id"] not in asked)
    text, labels = item_to_example(task, item, first)
    assert text.endswith("text: " + item["text"]) and labels == item["labels"]


def test_fit_users_resume_and_per_user_outputs(demo, tmp_path: Path, capsys) -> None:
    from lamp_pl.cli import main
    from lamp_pl.cli.config import data_and_model

    root, config = demo
    out = tmp_path / "adapters"
    args = {"out": out, "min_profile": 4}
    training = TrainSettings(lr=0.05, batch_size=16, epochs=30, warmup_ratio=0.0, weight_decay=0.0)
    lora = LoraSettings(r=4, alpha=16, dropout=0.0)

    def job() -> AdapterJob:
        """Each run gets its own data module and base model, as each command line does."""
        data, model = data_and_model([config])
        return AdapterJob(data, model, None, training, lora)

    first = fit_users(job(), **args, shard="0/2")
    assert first["trained"] >= 2 and first["bytes_per_adapter"] > 0
    rest = fit_users(job(), **args, shard="1/2")
    again = fit_users(job(), **args, shard="0/2")
    assert again["trained"] == 0 and again["skipped_finished"] == first["trained"]  # a rerun skips them
    files = sorted(out.glob("*.safetensors"))
    assert len(files) == first["trained"] + rest["trained"]
    # The LoRA size, not the base model's: a tiny fraction of the base's weights.
    base_bytes = sum(p.stat().st_size for p in (root / "t5").glob("*.safetensors"))
    assert all(f.stat().st_size < base_bytes / 5 for f in files)

    # Two users' adapters give different outputs for the same input.
    datamodule, model = data_and_model([config])
    base = build_base(model)
    peft_model = add_lora_slot(base.model, read_settings(out)).eval()
    users = sorted({q.user for q in load_split(root / "data", datamodule.task, "test")})
    states = [load_adapter(out, u) for u in users]
    prompt = base.tokenizer(
        ["Which of these labels does this annotator give the text? text: lupa"], return_tensors="pt"
    )
    outputs = []
    for state in [s for s in states if s is not None][:2]:
        set_lora_state(peft_model, state)
        logits = peft_model(**prompt, decoder_input_ids=prompt["input_ids"][:, :1] * 0).logits
        outputs.append(logits)
    assert not outputs[0].allclose(outputs[1])

    capsys.readouterr()
    assert (
        main(["test-users", "--config", str(config), "--user-adapters", str(out), "--out", str(tmp_path / "eval")]) == 0
    )
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("{") : printed.rindex("}") + 1])
    predictions = json.loads((tmp_path / "eval/predictions_test.json").read_text())["golds"]
    assert summary["questions"] == len(predictions) and "test/f1_macro_user_mean" in summary
    assert {p["adapter"] for p in predictions} <= {True, False}
    with_adapter = {p["user"] for p in predictions if p["adapter"]}
    assert with_adapter == {u for u, s in zip(users, states) if s is not None}
    assert summary["users_with_adapter"] == len(with_adapter)
