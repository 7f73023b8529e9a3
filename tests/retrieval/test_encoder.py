"""Encoder: order kept through length sorting, pooling, truncation, precision, and real weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lamp_pl.retrieval.encoder import Encoder, EncoderSettings, encoder_slug, mean_pooling, resolve_precision

TEXTS = [
    "short one",
    "a much longer text with many more words than the others in this list",
    "middle sized text here",
    "x",
    "another text of some length",
]


@pytest.fixture(scope="module")
def encoder(tiny_bert) -> Encoder:
    return Encoder(tiny_bert, batch_size=2, progress=False)


def test_length_sorted_batches_keep_the_input_order(encoder):
    together = encoder.encode(TEXTS)
    one_by_one = np.concatenate([encoder.encode([t]) for t in TEXTS])
    assert together.dtype == np.float32 and together.shape == (len(TEXTS), encoder.dim)
    np.testing.assert_allclose(together, one_by_one, rtol=1e-4, atol=1e-5)


def test_counts_forward_calls_and_fills_a_memmap(encoder, tmp_path):
    before, total = encoder.forward_calls, Encoder.total_forward_calls
    store = np.lib.format.open_memmap(tmp_path / "e.npy", mode="w+", dtype=np.float32, shape=(5, encoder.dim))
    assert encoder.encode(TEXTS, store) is store
    assert encoder.forward_calls - before == 3 and Encoder.total_forward_calls - total == 3  # ceil(5 / 2)
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), encoder.encode(TEXTS), atol=1e-6)


def test_mean_pooling_ignores_padding():
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    assert mean_pooling(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 2.0]]


def test_normalize_and_truncation(tiny_bert):
    encoder = Encoder(tiny_bert, normalize=True, max_length=6, progress=False)
    assert encoder.max_length == 6 and max(len(t) for t in encoder.tokenize(TEXTS)) == 6
    np.testing.assert_allclose(np.linalg.norm(encoder.encode(TEXTS), axis=1), 1.0, rtol=1e-5)
    # Past the cut, words change nothing.
    long = encoder.encode(["alpha beta gamma delta epsilon zeta eta theta", "alpha beta gamma delta"])
    np.testing.assert_allclose(long[0], long[1], atol=1e-6)
    assert Encoder(tiny_bert, max_length=10_000, progress=False).max_length == 128  # the model's own limit


def test_precision_and_settings(tiny_bert):
    assert resolve_precision("auto", torch.device("cpu")) == torch.float32
    assert resolve_precision("auto", torch.device("cuda")) == torch.float16
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8", torch.device("cpu"))
    key = EncoderSettings(str(tiny_bert)).key()
    assert key["fingerprint"] and key["pooling"] == "mean" and key["dtype"] == "float32"
    assert encoder_slug("facebook/contriever") == "facebook--contriever"


def test_real_minilm_ranks_the_related_item_first():
    """Trained weights, offline, through the same class: meaning beats word overlap."""
    from lamp_pl.demo.models import minilm_path

    encoder = Encoder(minilm_path(), progress=False)
    items = [
        "Cooking pasta: boil salted water and add the noodles.",
        "Backpropagation and gradient descent fit the weights of deep learning models.",
        "Gardening tips: water the roses and train the climbing plants in spring.",
    ]
    query = encoder.encode(["How do I train a neural network?"])
    scores = encoder.encode(items) @ query[0]
    assert int(np.argmax(scores)) == 1, scores
