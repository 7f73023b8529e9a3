"""The embedding store shared by every task, split protocol and data folder of one encoder."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np

from lamp_pl.data.synthetic import write_synthetic
from lamp_pl.retrieval import Encoder, ProfileIndex, RetrievalConfig, prepare_retrieval
from lamp_pl.retrieval.encoder import EncoderSettings
from lamp_pl.retrieval.store import EmbeddingStore

TASK = "LaMP_4"


def test_a_second_data_folder_encodes_only_its_new_texts(data_root, tiny_bert, tmp_path):
    config = RetrievalConfig(encoder=str(tiny_bert), k_max=4)
    first = prepare_retrieval(TASK, data_root, ["dev"], config, tmp_path / "cache", progress=False)
    # Another folder: the same questions, one item retitled, and a split protocol of its own.
    other = tmp_path / "other"
    shutil.copytree(data_root / TASK, other / TASK)
    path = other / TASK / "dev_questions.json"
    records = json.loads(path.read_text())
    records[0]["profile"][0]["title"] = "a title no other item has"
    path.write_text(json.dumps(records))
    calls = Encoder.total_forward_calls
    second = prepare_retrieval(TASK, other, ["dev"], config, tmp_path / "cache", progress=False)
    assert first["encoded"] == first["distinct_texts"] and second["encoded"] == 1
    assert Encoder.total_forward_calls == calls + 1
    # The time-based protocol shares texts too: it encodes only those the store lacks.
    known = {json.loads(line) for index in (first, second) for line in open(f"{index['cache_dir']}/texts.jsonl")}
    time_based = tmp_path / "time"
    write_synthetic(time_based, task=TASK, users=6, profile_size=(5, 12), questions_per_user=2, time_based=True)
    third = prepare_retrieval(TASK, time_based, ["dev"], config, tmp_path / "cache", progress=False)
    texts = [json.loads(line) for line in open(f"{third['cache_dir']}/texts.jsonl")]
    assert third["encoded"] == len(set(texts) - known)
    # What the store assembled equals a fresh encoding.
    fresh = Encoder(tiny_bert, progress=False, device="cpu").encode(texts)
    np.testing.assert_allclose(ProfileIndex(third["cache_dir"]).embeddings, fresh, rtol=1e-4, atol=1e-5)


def test_a_damaged_chunk_is_ignored_and_its_texts_encoded_again(tiny_bert, tmp_path, caplog):
    settings = EncoderSettings(str(tiny_bert), device="cpu")
    store, encoder = EmbeddingStore(tmp_path, settings), settings.build(progress=False)
    texts = ["one text", "another text", "a third"]
    assert store.fill(tmp_path / "a.npy", texts, "item", lambda: encoder) == 3
    assert store.fill(tmp_path / "b.npy", texts[::-1] + ["new"], "item", lambda: encoder) == 1
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy")[:3], np.load(tmp_path / "a.npy")[::-1])
    for vectors in store.folder.glob("*.vectors.npy"):
        vectors.write_bytes(vectors.read_bytes()[:-4])  # truncated
    with caplog.at_level(logging.WARNING, logger="lamp_pl.retrieval.store"):
        assert store.fill(tmp_path / "c.npy", texts, "item", lambda: encoder) == 3
    assert "damaged" in caplog.text
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), np.load(tmp_path / "a.npy"), atol=1e-6)
