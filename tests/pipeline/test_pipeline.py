"""The plain data pipeline (`LaMPData`), its Lightning shell (`LaMPDataModule`) and `RetrievalView`."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import bm25_data
from lamp_pl.data.stages import stage_splits
from lamp_pl.lightning.datamodule import LaMPDataModule
from lamp_pl.pipeline.data import LaMPData
from lamp_pl.pipeline.sharding import UnpaddedShards
from lamp_pl.retrieval import RetrievalConfig, load_retrieved
from lamp_pl.retrieval.view import RetrievalView, prepare_views
from lamp_pl.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]


def settings(data_root: Path, cache: Path, tokenizer: Path) -> dict:
    return bm25_data(data_root, cache, tokenizer, batch_size=4)


def test_the_shell_takes_the_pipelines_constructor():
    assert LaMPDataModule.__init__ is LaMPData.__init__
    assert list(inspect.signature(LaMPDataModule).parameters) == list(inspect.signature(LaMPData).parameters)


def test_the_shell_keeps_plain_settings_as_hyperparameters(data_root, tiny_t5, tmp_path):
    shell = LaMPDataModule(**settings(data_root, tmp_path / "cache", tiny_t5))
    assert dict(shell.hparams) == shell.settings
    assert shell.hparams["retrieval"]["retriever"] == "bm25" and shell.hparams["synthetic"] is None
    assert not hasattr(LaMPData(**settings(data_root, tmp_path / "cache", tiny_t5)), "hparams")


def test_the_pipeline_imports_no_lightning_and_matches_the_shell(data_root, tiny_t5, tmp_path):
    """In a fresh process: build, load and batch with `LaMPData`; Lightning never loads."""
    script = f"""
import json, sys
from lamp_pl.pipeline.data import LaMPData
from lamp_pl.retrieval import RetrievalConfig
data = LaMPData(task="LaMP_2", data_dir={str(data_root)!r}, cache_dir={str(tmp_path / "cache")!r},
                tokenizer={str(tiny_t5)!r}, k=2, retrieval=RetrievalConfig(retriever="bm25"),
                max_input_length=96, max_target_length=16, batch_size=4)
data.prepare()
data.load("fit")
batch = next(iter(data.loader(data.train_split, train=True)))
heavy = [m for m in sys.modules if m.split(".")[0] in ("lightning", "lightning_fabric", "torchmetrics")]
print(json.dumps({{"ids": batch["ids"], "heavy": heavy}}))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    plain = json.loads(done.stdout.strip().splitlines()[-1])
    assert plain["heavy"] == []
    shell = LaMPDataModule(**settings(data_root, tmp_path / "cache", tiny_t5))
    shell.prepare_data()
    shell.setup("fit")
    assert next(iter(shell.train_dataloader()))["ids"] == plain["ids"]  # same caches, same order


def test_stage_splits_takes_the_stage_explicitly(data_root, tiny_t5, tmp_path):
    data = LaMPData(**{**settings(data_root, tmp_path / "cache", tiny_t5), "test_split": "test"})
    assert stage_splits(data) == {"fit": ["train", "dev"]}
    assert stage_splits(data, "test") == {"test": ["test"]}
    assert stage_splits(data, "predict") == {"predict": ["test"]}


@pytest.mark.parametrize("size", [0, 1, 7, 8])
def test_unpadded_shards_give_every_position_once(size):
    dataset = list(range(size))
    shards = [list(UnpaddedShards(dataset, 3, rank)) for rank in range(3)]
    assert sorted(i for shard in shards for i in shard) == dataset
    assert [len(UnpaddedShards(dataset, 3, rank)) for rank in range(3)] == [len(s) for s in shards]


def test_a_view_reads_what_load_retrieved_reads(data_root, tiny_t5, tmp_path):
    data = LaMPData(**settings(data_root, tmp_path / "cache", tiny_t5))
    view = data.prepare_view("dev", progress=False)
    lamp2 = get_task("LaMP_2")
    assert view == RetrievalView(lamp2, data_root, "dev", data.retrieval, tmp_path / "cache", 2, 0)
    expected = load_retrieved("LaMP_2", data_root, "dev", data.retrieval, tmp_path / "cache", 1, 1)
    assert [r.item_ids for r in view.top(1, offset=1).retrieved()] == [r.item_ids for r in expected]
    assert view.fingerprint() == data.view("dev").fingerprint()
    assert view.results_key()["split"] == "dev" and view.folder.is_dir()


def test_views_of_other_sources_do_not_share_a_build(data_root, tmp_path):
    lamp2, config = get_task("LaMP_2"), RetrievalConfig(retriever="bm25")
    bm25 = RetrievalView(lamp2, data_root, "dev", config, tmp_path)
    other = RetrievalView(lamp2, data_root, "train", config, tmp_path / "other")
    with pytest.raises(ValueError, match="different sources"):
        prepare_views([bm25, other])
    with pytest.raises(ValueError, match="at least one"):
        prepare_views([])
