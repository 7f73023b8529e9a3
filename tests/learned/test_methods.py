"""The official repository's remaining methods: ROPG-RL, RSPG (selector and `selected`),
`retrieval.use_date`, and two-stage per-user PEFT, on tiny offline models."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from helpers import base_args
from lamp_pl.learned.distill import collate_utilities
from lamp_pl.learned.rl import RLRetrieverModule, policy_gradient_loss
from lamp_pl.learned.selector import SelectorModule, selector_batches, selector_target, selector_texts
from lamp_pl.lightning.datamodule import LaMPDataModule
from lamp_pl.retrieval import RetrievalConfig, load_retrieved, prepare_retrieval
from lamp_pl.retrieval.dated import MissingDateError, dated_task
from lamp_pl.retrieval.index import ProfileIndex
from lamp_pl.retrieval.results import results_fingerprint
from lamp_pl.retrieval.selected import selection_report, write_choices
from lamp_pl.tasks import get_task

pytestmark = [pytest.mark.timeout(600), pytest.mark.usefixtures("one_torch_thread")]


def test_policy_gradient_raises_the_rewarded_items_probability(tiny_bert) -> None:
    logits = torch.zeros(1, 4, requires_grad=True)
    mask = torch.tensor([[True, True, True, False]])
    rewards = torch.tensor([[0.0, 1.0, 0.0, 5.0]])  # the padded candidate's reward never counts
    generator = torch.Generator().manual_seed(0)
    loss, _ = policy_gradient_loss(logits, mask, rewards, k=1, samples=8, generator=generator)
    loss.backward()
    with torch.no_grad():
        after = torch.softmax((logits - 1.0 * logits.grad).masked_fill(~mask, float("-inf")), -1)
    assert after[0, 1] > 1 / 3 and after[0, 3] == 0

    torch.manual_seed(0)
    module = RLRetrieverModule(str(tiny_bert), k=1, samples=32, dropout=False, max_length=32)
    words = sorted(w for w in module.tokenizer.get_vocab() if w.isalpha() and len(w) > 3)[:9]
    texts = [" ".join(words[i : i + 3]) for i in (0, 3, 6)]  # words the tiny tokenizer knows
    batch = collate_utilities([{"query": " ".join(words[::3]), "texts": texts, "utilities": [0.0, 0.0, 1.0]}])
    optimizer = torch.optim.SGD(module.encoder.parameters(), lr=1e-3)  # a small, first-order step

    def probability() -> float:
        with torch.no_grad():
            return float(torch.softmax(module.scores(batch), -1)[0, 2])

    before = probability()
    optimizer.zero_grad()
    module.losses(batch)[0].backward()
    optimizer.step()
    assert probability() > before


def test_selector_target_is_the_softmax_of_utilities_over_temperature(tiny_bert) -> None:
    records = [
        {"id": "q1", "input": "alpha beta", "items": {"bm25": ["x"], "none": []}, "utilities": {}},
        {"id": "q2", "input": "gamma delta", "items": {"bm25": ["y z"], "none": []}, "utilities": {}},
    ]
    records[0]["utilities"] = {"bm25": {"metric": 1.0}, "none": {"metric": 0.0}}
    records[1]["utilities"] = {"bm25": {"metric": 0.25}, "none": {"metric": 0.75}}
    temperature = 0.5
    for mode in ("pre", "post"):
        rows = selector_batches(records, ["bm25", "none"], mode, "metric")
        utilities = torch.tensor([r["utilities"] for r in rows])
        target = selector_target(utilities, temperature)
        for row, (bm25, none) in zip(target.tolist(), [(1.0, 0.0), (0.25, 0.75)]):
            z = math.exp(bm25 / temperature) + math.exp(none / temperature)
            assert row == pytest.approx([math.exp(bm25 / temperature) / z, math.exp(none / temperature) / z])
        module = SelectorModule(str(tiny_bert), ["bm25", "none"], mode, temperature, max_length=32).eval()  # no dropout
        batch = {"texts": [r["texts"] for r in rows], "utilities": utilities}
        with torch.no_grad():
            log_model = torch.log_softmax(module.scores(batch["texts"]), -1)
            expected = (target * (target.log() - log_model)).sum(-1).mean()
            assert float(module.loss(batch)) == pytest.approx(float(expected), rel=1e-5)
        assert module.scores(batch["texts"]).shape == (2, 2)
        assert set(module.choose(records).values()) <= {"bm25", "none"}


def test_a_selector_reading_the_query_reads_it_in_place_of_the_input(tiny_bert) -> None:
    record = {"id": "q1", "input": "which tag? description: alpha beta", "query": "alpha beta"}
    record["items"] = {"bm25": ["x"], "none": []}
    assert selector_texts(record, ["bm25", "none"], "pre", "query") == ["alpha beta"]
    assert selector_texts(record, ["bm25", "none"], "post", "query") == ["alpha beta | x", "alpha beta"]
    assert selector_texts(record, ["bm25", "none"], "post") == [record["input"] + " | x", record["input"]]
    module = SelectorModule(str(tiny_bert), ["bm25", "none"], "pre", max_length=32, reads="query")
    assert module.hparams["reads"] == "query" and set(module.choose([record]).values()) <= {"bm25", "none"}
    with pytest.raises(ValueError, match="no 'query'.*score-retrievers again"):
        selector_texts({"id": "old", "input": "x", "items": {}}, ["bm25"], "pre", "query")
    with pytest.raises(ValueError, match="reads must be"):
        SelectorModule(str(tiny_bert), ["bm25"], "pre", reads="prompt")  # type: ignore[arg-type]


def _datamodule(data_root: Path, tiny_t5: Path, cache: Path, **retrieval) -> LaMPDataModule:
    return LaMPDataModule(
        task="LaMP_2",
        data_dir=str(data_root),
        cache_dir=str(cache),
        tokenizer=str(tiny_t5),
        k=2,
        retrieval=RetrievalConfig(**retrieval),
        max_input_length=128,
        max_target_length=8,
    )


def test_selected_prompts_equal_the_chosen_retrievers_prompts(data_root, tiny_t5, tmp_path) -> None:
    cache, split = tmp_path / "cache", "dev"
    plain = {name: _datamodule(data_root, tiny_t5, cache, retriever=name) for name in ("bm25", "recency")}
    prompts = {}
    for name, dm in plain.items():
        dm.build([split])
        prompts[name] = dm.prompts(split)
    ids = [r.question_id for r in load_retrieved("LaMP_2", data_root, split, plain["bm25"].retrieval, cache, 2)]
    choices = {qid: ("bm25" if i % 3 else "recency") for i, qid in enumerate(ids)}
    pool = {"bm25": {"retriever": "bm25"}, "recency": {"retriever": "recency"}}
    path = write_choices(tmp_path / "choices.json", pool, choices)
    dm = _datamodule(data_root, tiny_t5, cache, retriever="selected", selector=str(path))
    dm.build([split])
    selected = dm.prompts(split)
    assert selected == [prompts[choices[qid]][i] for i, qid in enumerate(ids)]
    assert len(set(choices.values())) == 2
    records = [
        {"id": qid, "utilities": {n: {"metric": float(n == choices[qid])} for n in pool}} for qid in ids
    ]  # utilities under which the choices are the oracle's
    report = selection_report(choices, records)
    assert report["selected"] == report["oracle"] == 1.0
    assert report["chosen_share"]["bm25"] == pytest.approx(sum(v == "bm25" for v in choices.values()) / len(ids))


def test_use_date_changes_the_cache_key_and_the_item_text_as_documented(data_root, tmp_path) -> None:
    task, cache = get_task("LaMP_2"), tmp_path / "cache"
    item = {"id": "1", "description": "a film", "tag": "comedy", "date": "2015-01-04"}
    assert dated_task(task).item_text(item) == task.item_text(item) + " date: 2015-01-04"
    with pytest.raises(MissingDateError, match="'1'"):
        dated_task(task).item_text({k: v for k, v in item.items() if k != "date"})
    plain = RetrievalConfig(retriever="bm25")
    dated = dataclasses.replace(plain, use_date=True)
    reports = {
        c.use_date: prepare_retrieval(task, data_root, ["dev"], c, cache, progress=False) for c in (plain, dated)
    }
    assert reports[True]["cache_dir"] != reports[False]["cache_dir"]
    assert results_fingerprint(task, "dev", plain, cache) != results_fingerprint(task, "dev", dated, cache)
    indexes = {flag: ProfileIndex(report["cache_dir"]) for flag, report in reports.items()}
    for row in range(len(indexes[False].items)):
        profile_item = indexes[False].item(row)
        assert indexes[True].item(row) == profile_item
        assert indexes[False].item_text_of(row) == task.item_text(profile_item)
        assert indexes[True].item_text_of(row) == f"{task.item_text(profile_item)} date: {profile_item['date']}"
    loaded = {c.use_date: load_retrieved(task, data_root, "dev", c, cache, 2) for c in (plain, dated)}
    assert [r.question_id for r in loaded[True]] == [r.question_id for r in loaded[False]]
    assert all("date" in item for r in loaded[True] for item in r.items)  # the items themselves are unchanged
    queries = {flag: index.splits["dev"].query_rows for flag, index in indexes.items()}
    assert [indexes[True].texts[int(r)] for r in queries[True]] == [
        indexes[False].texts[int(r)] for r in queries[False]
    ]


def test_two_stage_user_adapter_starts_from_the_task_adapter(data_root, tiny_t5, tmp_path) -> None:
    from safetensors.torch import load_file

    from lamp_pl.adapters import fit_users
    from lamp_pl.adapters.base import AdapterJob
    from lamp_pl.adapters.store import adapter_path
    from lamp_pl.adapters.two_stage import fit_task_adapter
    from lamp_pl.cli.config import data_and_model
    from lamp_pl.lightning.settings import ADAPTER_TRAINING, TASK_ADAPTER_TRAINING
    from lamp_pl.models.adapters import LoraSettings

    args = base_args(tiny_t5, data_root, tmp_path / "cache", "LaMP_2")  # --config C then flag/value pairs
    pairs = list(zip(args[2::2], args[3::2]))
    spec = yaml.safe_load(Path(args[1]).read_text())
    spec["model"] = {**spec.get("model", {}), "model_name_or_path": str(tiny_t5)}
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(spec))
    data_argv = [part for pair in pairs if pair[0].startswith("--data.") for part in pair]
    data, model = data_and_model([str(config)], data_argv)
    lora = LoraSettings(r=4, alpha=8, dropout=0.0)
    task_job = AdapterJob(data, model, None, replace(TASK_ADAPTER_TRAINING, epochs=1, lr=1e-2), lora)
    task = fit_task_adapter(task_job, tmp_path / "task")
    task_state = load_file(task["adapter"])
    assert task["pairs"] > 0 and task_state
    job = AdapterJob(data, model, None, replace(ADAPTER_TRAINING, epochs=0), lora)
    two = fit_users(job, tmp_path / "two", min_profile=1, init_adapter=task["adapter"])
    one = fit_users(job, tmp_path / "one", min_profile=1)
    data = json.loads(Path(two["user_data"]).read_text())
    assert two["trained"] == one["trained"] == len(data) > 0 and all(v > 0 for v in data.values())
    user = sorted(data)[0]
    two_state = load_file(str(adapter_path(tmp_path / "two", user)))
    one_state = load_file(str(adapter_path(tmp_path / "one", user)))
    assert two_state.keys() == task_state.keys()
    assert all(torch.equal(two_state[k], task_state[k]) for k in task_state)
    assert not all(torch.equal(one_state[k], task_state[k]) for k in task_state)
