"""Reranking: a cross-encoder saved offline reorders the first stage's top N as its own scores say."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from lamp_pl.cli import main
from lamp_pl.data.lamp import load_split
from lamp_pl.retrieval import RetrievalConfig, load_retrieved, prepare_retrieval
from lamp_pl.retrieval.rerank import CrossEncoderScorer, first_stage_config
from lamp_pl.tasks import get_task

TASK = "LaMP_4"


@pytest.fixture(scope="module")
def cross_encoder(tiny_bert, tmp_path_factory) -> Path:
    """A tiny cross-encoder saved by sentence-transformers (one label, Sigmoid)."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("ce")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=1)
    torch.nn.init.normal_(model.classifier.weight, std=1.0)  # scores that spread, so the order means something
    model.save_pretrained(folder / "hf")
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(folder / "hf")
    CrossEncoder(str(folder / "hf"), device="cpu").save(str(folder / "ce"))
    return folder / "ce"


def test_reranked_order_equals_a_direct_scoring_of_the_pairs(cross_encoder, data_root, tmp_path):
    from sentence_transformers import CrossEncoder

    config = RetrievalConfig(retriever="bm25", rerank=str(cross_encoder), rerank_depth=6, k_max=3, rerank_batch_size=4)
    prepare_retrieval(TASK, data_root, ["dev"], config, tmp_path, progress=False)
    first = load_retrieved(TASK, data_root, "dev", first_stage_config(config), tmp_path, k=6)
    reranked = load_retrieved(TASK, data_root, "dev", config, tmp_path, k=3)
    model, task = CrossEncoder(str(cross_encoder), device="cpu"), get_task(TASK)

    changed = 0
    for question, stage, got in zip(load_split(data_root, TASK, "dev"), first, reranked, strict=True):
        if not stage.items:
            continue
        pairs = [(task.query(question.input), task.item_text(item)) for item in stage.items]
        scores = model.predict(pairs)
        order = np.argsort(-scores, kind="stable")[:3]
        assert got.item_ids == [stage.item_ids[i] for i in order]
        np.testing.assert_allclose(got.scores, scores[order], atol=1e-5)
        np.testing.assert_allclose(got.first_scores, np.asarray(stage.scores)[order], rtol=1e-6)
        changed += got.item_ids != stage.item_ids[:3]
    assert changed  # the cross-encoder reorders some lists
    calls = CrossEncoderScorer.total_forward_calls
    again = prepare_retrieval(TASK, data_root, ["dev"], config, tmp_path, progress=False)
    assert again["reused"] and CrossEncoderScorer.total_forward_calls == calls  # cached like the first stage


def test_sharded_scoring_equals_one_process(cross_encoder, data_root, tmp_path):
    config = RetrievalConfig(retriever="bm25", rerank=str(cross_encoder), rerank_depth=5, k_max=2)
    prepare_retrieval(TASK, data_root, ["dev"], config, tmp_path / "one", progress=False)
    barrier, errors = threading.Barrier(2, timeout=120), []

    def main(rank: int) -> None:
        try:
            prepare_retrieval(
                TASK,
                data_root,
                ["dev"],
                config,
                tmp_path / "two",
                rank=rank,
                world_size=2,
                barrier=barrier.wait,
                progress=False,
            )
        except BaseException as error:  # noqa: BLE001 -- reported below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=main, args=(r,)) for r in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    one = load_retrieved(TASK, data_root, "dev", config, tmp_path / "one", k=2)
    two = load_retrieved(TASK, data_root, "dev", config, tmp_path / "two", k=2)
    assert [r.item_ids for r in one] == [r.item_ids for r in two]
    np.testing.assert_allclose(
        np.concatenate([r.scores for r in one if r.scores]),
        np.concatenate([r.scores for r in two if r.scores]),
        atol=1e-5,
    )
    assert not list((tmp_path / "two").rglob(".rerank-shard-*"))  # shards cleaned up


def test_inspect_shows_both_stages_scores(cross_encoder, data_root, tiny_t5, tmp_path, capsys):
    retrieval = {"retriever": "bm25", "rerank": str(cross_encoder), "rerank_depth": 6, "k_max": 4}
    data = {"task": "LaMP_2", "data_dir": str(data_root), "cache_dir": str(tmp_path / "cache")}
    data.update(tokenizer=str(tiny_t5), k=3, max_input_length=128, retrieval=retrieval)
    (tmp_path / "rerank.yaml").write_text(yaml.safe_dump({"data": data}))
    question = next(q for q in load_split(data_root, "LaMP_2", "dev") if len(q.profile) > 3)
    assert main(["inspect", "--config", str(tmp_path / "rerank.yaml"), "--split", "dev", "--id", question.id]) == 0
    shown = json.loads(capsys.readouterr().out)["retrieved"]
    assert len(shown) == 3 and all("first_stage_score" in item for item in shown)
    assert [item["score"] for item in shown] == sorted((item["score"] for item in shown), reverse=True)
