"""ProfileIndex: exact search, caching, invalidation, atomic and corrupted builds, sharding, locking."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from lamp_pl.data.lamp import load_split
from lamp_pl.data.synthetic import write_synthetic
from lamp_pl.retrieval import CacheError, Encoder, ProfileIndex, RetrievalConfig, load_retrieved, prepare_retrieval
from lamp_pl.retrieval.build import build_profile_index, index_folder
from lamp_pl.tasks import get_task

TASK = "LaMP_4"


@pytest.fixture(scope="module")
def time_based(tmp_path_factory) -> Path:
    """Users whose questions (across splits) share most of their profile."""
    root = tmp_path_factory.mktemp("time")
    write_synthetic(root, task=TASK, users=6, profile_size=(5, 12), questions_per_user=2, time_based=True, seed=3)
    return root


@pytest.fixture
def data(data_root, tmp_path) -> Path:
    """A private copy of the user-based data, free to modify."""
    shutil.copytree(data_root / TASK, tmp_path / "data" / TASK)
    return tmp_path / "data"


def config(tiny_bert, **overrides) -> RetrievalConfig:
    return RetrievalConfig(**{"encoder": str(tiny_bert), "k_max": 5, **overrides})


def prepare(data_dir, tiny_bert, cache, splits=("dev",), **overrides) -> dict:
    return prepare_retrieval(TASK, data_dir, list(splits), config(tiny_bert, **overrides), cache, progress=False)


def folder_of(cache: Path, tiny_bert) -> Path:
    return index_folder(cache, get_task(TASK), config(tiny_bert).encoder_settings())


@pytest.mark.parametrize("fixture", ["data_root", "time_based"])
def test_search_equals_brute_force_over_each_questions_profile(fixture, request, tiny_bert, tmp_path):
    data_dir = request.getfixturevalue(fixture)
    summary = prepare(data_dir, tiny_bert, tmp_path, splits=("train", "dev"), k_max=-1)
    index = ProfileIndex(summary["cache_dir"])
    encoder = Encoder(tiny_bert, progress=False)
    task = get_task(TASK)
    for split in ("train", "dev"):
        questions = load_split(data_dir, TASK, split)
        retrieved = load_retrieved(TASK, data_dir, split, config(tiny_bert, k_max=-1), tmp_path, k=3)
        for question, got in zip(questions, retrieved, strict=True):
            profile = list({item["id"]: item for item in question.profile}.values())
            vectors = encoder.encode([task.item_text(item) for item in profile])
            scores = vectors @ encoder.encode([task.query(question.input)])[0]
            top = np.argsort(-scores, kind="stable")[:3]
            np.testing.assert_allclose(got.scores, scores[top], rtol=1e-4, atol=1e-4)
            # Ids may differ only where scores tie.
            for item_id, expected, score in zip(got.item_ids, top, scores[top], strict=True):
                assert item_id == profile[expected]["id"] or np.isclose(score, scores).sum() > 1
    if fixture == "time_based":  # each shared item is stored (and encoded) once
        entries = sum(len(q.profile) for s in ("train", "dev", "test") for q in load_split(data_dir, TASK, s))
        assert index.manifest["counts"]["items"] < entries / 2


def test_second_build_encodes_nothing_and_records_the_manifest(data, tiny_bert, tmp_path):
    first = prepare(data, tiny_bert, tmp_path / "cache")
    assert first["encoded"] == first["distinct_texts"] > 0 and not first["reused"]
    calls = Encoder.total_forward_calls
    second = prepare(data, tiny_bert, tmp_path / "cache")
    assert Encoder.total_forward_calls == calls and second["encoded"] == 0 and second["reused"]
    manifest = json.loads((folder_of(tmp_path / "cache", tiny_bert) / "manifest.json").read_text())
    key = manifest["key"]
    assert set(key["inputs"]) == {"train", "dev", "test"}
    assert all(len(v["sha256"]) == 64 for v in key["inputs"].values())
    assert key["encoder"]["max_length"] == 512 and key["encoder"]["normalize"] is False
    assert key["encoder"]["pooling"] == "mean" and key["lamp_pl_version"]


def test_changed_data_file_triggers_a_rebuild(data, tiny_bert, tmp_path):
    prepare(data, tiny_bert, tmp_path / "cache")
    path = data / TASK / "train_questions.json"
    records = json.loads(path.read_text())
    records[0]["profile"][0]["title"] = "an edited title"
    path.write_text(json.dumps(records))
    with pytest.raises(CacheError, match="changed"):
        load_retrieved(TASK, data, "dev", config(tiny_bert), tmp_path / "cache", k=1)
    again = prepare(data, tiny_bert, tmp_path / "cache")
    # The shared embedding store holds every other text: only the edited title is encoded.
    assert not again["index_reused"] and again["encoded"] == 1


@pytest.mark.parametrize("change", [{"encoder_max_length": 16}, {"normalize": True}])
def test_changed_setting_builds_its_own_index_and_keeps_the_other(change, data, tiny_bert, tmp_path):
    prepare(data, tiny_bert, tmp_path / "cache")
    with pytest.raises(CacheError, match="prepare_retrieval"):
        load_retrieved(TASK, data, "dev", config(tiny_bert, **change), tmp_path / "cache", k=1)
    again = prepare(data, tiny_bert, tmp_path / "cache", **change)
    assert not again["index_reused"] and again["encoded"] > 0
    assert prepare(data, tiny_bert, tmp_path / "cache", **change)["reused"]
    # Each setting has its own folder: switching back reuses the first index, nothing rebuilds.
    assert prepare(data, tiny_bert, tmp_path / "cache")["reused"]
    assert prepare(data, tiny_bert, tmp_path / "cache", encode_batch_size=3)["reused"], "batch size shapes nothing"


def test_a_build_that_fails_half_way_leaves_nothing_that_loads(data, tiny_bert, tmp_path, monkeypatch):
    real = Encoder._forward

    def failing(self, *args):
        if self.forward_calls >= 1:
            raise RuntimeError("killed half way")
        return real(self, *args)

    monkeypatch.setattr(Encoder, "_forward", failing)
    with pytest.raises(RuntimeError, match="half way"):
        prepare(data, tiny_bert, tmp_path / "cache", encode_batch_size=4)
    folder = folder_of(tmp_path / "cache", tiny_bert)
    with pytest.raises(CacheError):
        ProfileIndex(folder)
    with pytest.raises(CacheError, match="prepare_retrieval"):
        load_retrieved(TASK, data, "dev", config(tiny_bert), tmp_path / "cache", k=1)
    assert not [p for p in folder.parent.iterdir() if p.is_dir()]  # no half-written folder left over
    monkeypatch.setattr(Encoder, "_forward", real)
    assert prepare(data, tiny_bert, tmp_path / "cache")["encoded"] > 0


@pytest.mark.parametrize("damage", ["manifest", "embeddings", "items"])
def test_corrupted_cache_is_reported_and_rebuilt(damage, data, tiny_bert, tmp_path, caplog):
    prepare(data, tiny_bert, tmp_path / "cache")
    folder = folder_of(tmp_path / "cache", tiny_bert)
    if damage == "manifest":
        (folder / "manifest.json").write_text("{not json")
    elif damage == "embeddings":
        np.save(folder / "embeddings.npy", np.zeros((3, 2), dtype=np.float32))  # wrong shape
    else:
        (folder / "items.jsonl").write_bytes(b"truncated")
    with caplog.at_level(logging.WARNING, logger="lamp_pl.retrieval.index"):
        again = prepare(data, tiny_bert, tmp_path / "cache")
    assert "corrupted" in caplog.text and str(folder) in caplog.text
    assert not again["index_reused"] and again["encoded"] == 0  # the shared store still holds the texts
    assert len(load_retrieved(TASK, data, "dev", config(tiny_bert), tmp_path / "cache", k=2)) > 0


def run_ranks(world_size: int, target) -> list:
    """Run `target(rank, barrier)` on `world_size` threads, as DDP ranks would."""
    barrier, results, errors = threading.Barrier(world_size, timeout=60), [None] * world_size, []

    def main(rank: int) -> None:
        try:
            results[rank] = target(rank, barrier.wait)
        except BaseException as error:  # noqa: BLE001 -- reported below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=main, args=(r,)) for r in range(world_size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_sharded_build_equals_a_single_process_build(time_based, tiny_bert, tmp_path):
    single = prepare(time_based, tiny_bert, tmp_path / "one", splits=("train", "dev"))
    cfg = config(tiny_bert)
    summaries = run_ranks(
        2,
        lambda rank, barrier: prepare_retrieval(
            TASK,
            time_based,
            ["train", "dev"],
            cfg,
            tmp_path / "two",
            rank=rank,
            world_size=2,
            barrier=barrier,
            progress=False,
        ),
    )
    assert sum(s["encoded"] for s in summaries) == single["encoded"] and all(s["encoded"] for s in summaries)
    one, two = ProfileIndex(single["cache_dir"]), ProfileIndex(summaries[0]["cache_dir"])
    np.testing.assert_allclose(one.embeddings, two.embeddings, rtol=1e-5, atol=1e-6)
    assert one.manifest["key"] == two.manifest["key"] and one.manifest["counts"] == two.manifest["counts"]
    for split in ("train", "dev"):
        a = load_retrieved(TASK, time_based, split, cfg, tmp_path / "one", k=5)
        b = load_retrieved(TASK, time_based, split, cfg, tmp_path / "two", k=5)
        assert [r.item_ids for r in a] == [r.item_ids for r in b]
    assert not list((tmp_path / "two" / TASK).glob(".*build*"))  # shards cleaned up
    # A valid cache is a no-op on every rank: nothing encoded, no encoder made.
    calls = Encoder.total_forward_calls
    again = run_ranks(
        2,
        lambda rank, barrier: build_profile_index(
            get_task(TASK),
            time_based,
            ["dev", "test", "train"],
            tmp_path / "two",
            cfg.encoder_settings(),
            rank=rank,
            world_size=2,
            barrier=barrier,
            progress=False,
        )[1],
    )
    assert all(s["reused"] and s["encoded"] == 0 for s in again) and Encoder.total_forward_calls == calls


def test_concurrent_builders_do_not_race(data, tiny_bert, tmp_path):
    """Two independent builders of one cache: the lock lets one encode, the other reuses."""
    summaries = run_ranks(2, lambda rank, barrier: prepare(data, tiny_bert, tmp_path / "cache"))
    assert sorted(s["index_reused"] for s in summaries) == [False, True]
    assert sum(s["encoded"] for s in summaries) == summaries[0]["distinct_texts"]
