"""`score_retrievers` (RSPG's training signal): one record per question, each pool member's items
as that retriever ranks them, the generator's log-likelihood of the gold under each member's
prompt as a direct forward pass gives it, and a cache keyed by the pool."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import bm25_data, save_generator
from lamp_pl.data.lamp import load_split
from lamp_pl.learned.scoring import load_generator
from lamp_pl.learned.utilities import load_retriever_utilities, pool_configs, score_retrievers
from lamp_pl.lightning.datamodule import LaMPDataModule
from lamp_pl.retrieval import load_retrieved

POOL = {"bm25": {"retriever": "bm25"}, "recency": {"retriever": "recency"}, "none": {"retriever": "none"}}

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # float sums depend on the thread count


def test_score_retrievers_scores_each_members_prompt_and_caches_by_pool(data_root, tiny_t5, tmp_path) -> None:
    dm = LaMPDataModule(**bm25_data(data_root, tmp_path / "cache", tiny_t5))
    ckpt = save_generator(tiny_t5, tmp_path / "generator.ckpt")
    path = score_retrievers(dm, ckpt, POOL, split="train", batch_size=4, chunk_size=3, progress=False)
    records = load_retriever_utilities(path)
    questions = load_split(dm.data_dir, dm.task, "train")
    assert [r["id"] for r in records] == [q.id for q in questions]

    configs = pool_configs(dm.retrieval, POOL)
    ranked = {
        name: load_retrieved(dm.task, dm.data_dir, "train", config, dm.cache_dir, dm.k)
        for name, config in configs.items()
        if config.retriever != "none"
    }
    generator = load_generator(ckpt).eval()
    for q in (0, len(questions) - 1):
        record, question = records[q], questions[q]
        assert record["gold"] == question.output and record["items"]["none"] == []
        assert record["query"] == dm.task.query(question.input) and record["query"] in question.input
        for name in ("bm25", "recency"):
            assert record["items"][name] == [dm.task.item_text(item) for item in ranked[name][q].items]
        for name in POOL:
            items = ranked[name][q].items if name in ranked else []
            prompt = dm.prompt_for(question, items)
            ids = generator.tokenizer(prompt, return_tensors="pt", truncation=True, max_length=dm.max_input_length)
            labels = generator.tokenizer(
                question.output, return_tensors="pt", truncation=True, max_length=dm.max_target_length
            )["input_ids"]
            with torch.no_grad():
                expected = -float(generator.model(**ids, labels=labels).loss) * labels.shape[1]
            utility = record["utilities"][name]
            assert math.isclose(utility["log_likelihood"], expected, rel_tol=1e-4, abs_tol=1e-4)
            assert utility["metric"] in (0.0, 1.0)  # LaMP-2: accuracy of the greedy output

    # Cached: the same pool returns the file unchanged; another pool is another file.
    stamp = path.stat().st_mtime_ns
    assert score_retrievers(dm, ckpt, POOL, split="train", chunk_size=3, progress=False) == path
    assert path.stat().st_mtime_ns == stamp
    smaller = {"bm25": POOL["bm25"], "none": POOL["none"]}
    other = score_retrievers(dm, ckpt, smaller, split="train", chunk_size=3, progress=False)
    assert other != path and set(load_retriever_utilities(other)[0]["utilities"]) == {"bm25", "none"}
