"""Commands that do not train start without Lightning or a model: each runs in a fresh process
whose loaded modules are then listed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import bm25_data
from lamp_pl.cli import main

ROOT = Path(__file__).resolve().parents[2]
# Runs a command in this process, then prints which heavy modules it loaded (on the last line).
PROBE = """
import json, sys
from lamp_pl.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as done:  # --help ends with SystemExit(0)
    code = done.code
loaded = sorted(sys.modules)
print(json.dumps({
    "code": code,
    "lightning": [m for m in loaded if m.split(".")[0] in ("lightning", "lightning_fabric", "pytorch_lightning")],
    "models": [m for m in loaded if m.startswith("transformers.models.") and ".modeling_" in m and ".auto." not in m],
    "torchmetrics": "torchmetrics" in sys.modules,
    "datasets": "datasets" in sys.modules,
    "torch": "torch" in sys.modules,
}))
"""


def probe(args: list[str]) -> dict:
    """Run `lamp-pl <args>` in a new process; its exit code and the heavy modules it loaded."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def config(tmp_path_factory, data_root, tiny_t5) -> Path:
    """A tiny BM25 data section whose caches are built once (in this process)."""
    folder = tmp_path_factory.mktemp("startup")
    section = bm25_data(data_root, folder / "cache", tiny_t5)
    path = folder / "data.yaml"
    path.write_text(yaml.safe_dump({"trainer": {"max_epochs": 1}, "data": section}))
    assert main(["index", "--config", str(path)]) == 0
    return path


def assert_plain(loaded: dict) -> None:
    assert loaded["code"] in (0, None)
    assert loaded["lightning"] == [], loaded["lightning"]
    assert loaded["models"] == [], loaded["models"]


def test_a_cached_index_loads_no_lightning_no_model_no_torch(config):
    loaded = probe(["index", "--config", str(config)])
    assert_plain(loaded)
    assert not loaded["torchmetrics"] and not loaded["datasets"] and not loaded["torch"]


def test_inspect_loads_no_lightning_nor_model(config, data_root):
    from lamp_pl.data.lamp import load_split

    question = load_split(data_root, "LaMP_2", "dev")[0]
    assert_plain(probe(["inspect", "--config", str(config), "--split", "dev", "--id", question.id]))


def test_check_data_and_evaluate_load_no_lightning_nor_model(data_root):
    assert_plain(probe(["check-data", "--task", "LaMP_2", "--data_dir", str(data_root)]))
    golds = data_root / "LaMP_2" / "dev_outputs.json"
    assert_plain(probe(["evaluate", "--task", "LaMP_2", "--golds", str(golds), "--preds", str(golds)]))


@pytest.mark.parametrize("args", [["--help"], ["index", "--help"], ["download", "--help"]])
def test_help_loads_no_lightning_nor_model(args):
    loaded = probe(args)
    assert_plain(loaded)
    assert not loaded["torchmetrics"]
