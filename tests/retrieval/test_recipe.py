"""Models encoded as their sentence-transformers files say: equal to `SentenceTransformer.encode`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lamp_pl.errors import ConfigError
from lamp_pl.retrieval import ProfileIndex, RetrievalConfig, load_retrieved, prepare_retrieval
from lamp_pl.retrieval.encoder import Encoder, EncoderSettings
from lamp_pl.retrieval.recipe import read_recipe
from lamp_pl.tasks import get_task

TEXTS = [
    "How do I train a neural network?",
    "Cooking pasta: boil salted water and add the noodles.",
    "short",
    "Gardening tips: water the roses and train the climbing plants in spring, every single week.",
]
PROMPTS = {"query": "query: ", "document": "passage: "}


def save_sentence_transformer(base: Path, dest: Path, pooling: str, normalize: bool, prompts: dict) -> Path:
    """A tiny model saved by sentence-transformers itself, with the given pooling and prompts."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(base), max_seq_length=48)
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=pooling)]
    model = SentenceTransformer(
        modules=[*modules, *([Normalize()] if normalize else [])], prompts=prompts, device="cpu"
    )
    model.save(str(dest))
    return dest


@pytest.fixture(scope="module")
def saved(tiny_bert, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("st")
    return {
        "cls": save_sentence_transformer(tiny_bert, root / "cls", "cls", True, PROMPTS),
        "lasttoken": save_sentence_transformer(tiny_bert, root / "last", "lasttoken", False, PROMPTS),
        "max": save_sentence_transformer(tiny_bert, root / "max", "max", False, {}),
    }


def test_real_minilm_equals_sentence_transformers():
    """The demo's all-MiniLM-L6-v2 folder: mean pooling, Normalize, 256 tokens, as the library."""
    from sentence_transformers import SentenceTransformer

    from lamp_pl.demo.models import minilm_path

    encoder = Encoder(minilm_path(), progress=False, device="cpu", batch_size=3)
    assert (encoder.recipe.pooling, encoder.recipe.normalize, encoder.max_length) == ("mean", True, 256)
    long = [" ".join(TEXTS * 20)]  # past 256 tokens: the declared length truncates as the library's
    expected = SentenceTransformer(str(minilm_path()), device="cpu").encode(TEXTS + long)
    np.testing.assert_allclose(encoder.encode(TEXTS + long), expected, atol=2e-5)


@pytest.mark.parametrize("pooling", ["cls", "lasttoken", "max"])
def test_saved_poolings_and_prompts_equal_sentence_transformers(pooling, saved):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(saved[pooling]), device="cpu")
    encoder = Encoder(saved[pooling], progress=False, device="cpu", batch_size=2)
    np.testing.assert_allclose(encoder.encode(TEXTS, role="query"), model.encode_query(TEXTS), atol=2e-5)
    np.testing.assert_allclose(encoder.encode(TEXTS, role="item"), model.encode_document(TEXTS), atol=2e-5)
    key = EncoderSettings(str(saved[pooling])).key()
    assert key["pooling"] == {"lasttoken": "last_token"}.get(pooling, pooling)
    assert key["normalize"] is (pooling == "cls")
    assert (key["query_prefix"], key["item_prefix"]) == (("query: ", "passage: ") if pooling != "max" else ("", ""))


def test_settings_override_the_folder_and_plain_folders_keep_contrievers_rule(saved, tiny_bert):
    assert read_recipe(str(tiny_bert)).pooling == "mean" and read_recipe(str(tiny_bert)).source == "default"
    settings = EncoderSettings(str(saved["cls"]), pooling="mean", normalize=False, query_prefix="", item_prefix="")
    pinned, plain = settings.build(progress=False), Encoder(tiny_bert, progress=False, device="cpu")
    np.testing.assert_allclose(pinned.encode(TEXTS, role="query"), plain.encode(TEXTS), atol=1e-5)
    assert settings.key()["pooling"] == "mean" and settings.key()["normalize"] is False


def test_what_cannot_be_reproduced_is_a_one_line_error(saved, tmp_path):
    dense = Path(shutil.copytree(saved["max"], tmp_path / "dense"))
    modules = json.loads((dense / "modules.json").read_text())
    (dense / "modules.json").write_text(json.dumps([*modules, {"path": "2_Dense", "type": "x.models.Dense"}]))
    with pytest.raises(ConfigError, match="Dense"):
        read_recipe(str(dense))
    both = Path(shutil.copytree(saved["max"], tmp_path / "both"))
    (both / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": ["cls", "mean"]}))
    with pytest.raises(ConfigError, match="concatenated"):
        read_recipe(str(both))
    (both / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "weightedmean"}))
    with pytest.raises(ConfigError, match="weightedmean"):
        read_recipe(str(both))
    assert read_recipe(str(both), pooling_set=True).pooling == "mean"  # retrieval.pooling replaces it
    with pytest.raises(ConfigError, match="retrieval.pooling"):
        EncoderSettings(str(both), pooling="median").key()


def test_an_index_with_query_prefixes_ranks_as_the_library(saved, data_root, tmp_path):
    """Queries take ``query: `` and items ``passage: ``: the index keeps a query store beside."""
    from sentence_transformers import SentenceTransformer

    from lamp_pl.data.lamp import load_split

    task = get_task("LaMP_4")
    config = RetrievalConfig(encoder=str(saved["cls"]), k_max=3)
    summary = prepare_retrieval(task, data_root, ["dev"], config, tmp_path, progress=False)
    assert ProfileIndex(summary["cache_dir"]).query_embeddings is not None
    model = SentenceTransformer(str(saved["cls"]), device="cpu")
    retrieved = load_retrieved(task, data_root, "dev", config, tmp_path, k=3)
    for question, got in list(zip(load_split(data_root, task, "dev"), retrieved, strict=True))[:8]:
        profile = list({item["id"]: item for item in question.profile}.values())
        items = model.encode_document([task.item_text(item) for item in profile])
        scores = items @ model.encode_query([task.query(question.input)])[0]
        np.testing.assert_allclose(got.scores, np.sort(scores)[::-1][: len(got.scores)], atol=1e-4)
