"""Shared fixtures: synthetic LaMP data, tiny offline models, and no network."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_LOOPBACK = ("127.", "localhost", "::1")
_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address) -> None:
    host = address[0] if isinstance(address, tuple) else str(address)
    if self.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(_LOOPBACK):
        raise OSError(f"tests must not touch the network (tried {address!r})")
    return _real_connect(self, address)


# Blocks sockets for the whole session, including child processes that import this conftest.
socket.socket.connect = _loopback_only


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (`pytest.mark.usefixtures`), as the 2-rank workers run
    (OMP_NUM_THREADS=1): float sums depend on the thread count, so cached scores, direct
    recomputations and the workers' results then agree."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def gloo_ranks():
    """Two gloo ranks (spawned processes) shared by the tests that check a metric's DDP sync; the
    job functions must live in modules on the ranks' sys.path (tests/ and tests/metrics/)."""
    from gloo_helpers import GlooRanks

    ranks = GlooRanks()
    yield ranks
    ranks.close()


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """Synthetic LaMP folders for every task (small), shared by the session."""
    from lamp_pl.data.synthetic import write_synthetic
    from lamp_pl.tasks import builtin_task_names

    root = tmp_path_factory.mktemp("lamp")
    for name in builtin_task_names():  # not custom tasks other tests registered
        write_synthetic(root, task=name, users=20, profile_size=(4, 12))
    return root


def _corpus(root: Path) -> list[str]:
    texts = []
    for path in sorted(root.glob("*/*_questions.json")):
        for record in json.loads(path.read_text()):
            texts.append(record["input"])
            texts.extend(
                " ".join(str(v) for k, v in item.items() if k not in ("id", "date")) for item in record["profile"]
            )
    for path in sorted(root.glob("*/*_outputs.json")):
        texts.extend(g["output"] for g in json.loads(path.read_text())["golds"])
    return texts


@pytest.fixture(scope="session")
def tiny_t5(data_root, tmp_path_factory) -> Path:
    """Folder of a tiny random T5 with a tokenizer trained on the synthetic corpus."""
    from lamp_pl.demo.models import build_tiny_t5

    return build_tiny_t5(tmp_path_factory.mktemp("models") / "t5", _corpus(data_root), vocab_size=800)


@pytest.fixture(scope="session")
def tiny_bert(data_root, tmp_path_factory) -> Path:
    """Folder of a tiny random BERT encoder (mean-pooled, Contriever's recipe)."""
    from lamp_pl.demo.models import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("models") / "bert", _corpus(data_root))


@pytest.fixture(scope="session")
def tiny_llama(data_root, tmp_path_factory) -> Path:
    """Folder of a tiny random Llama with a Llama-style tokenizer (BOS prepended, chat template)."""
    from lamp_pl.demo.models import build_tiny_causal

    return build_tiny_causal(tmp_path_factory.mktemp("models") / "llama", _corpus(data_root), vocab_size=800)


_SHARED_SCOPES = ("module", "class", "package")
# Session fixtures that start processes: their tests run on one worker, so they start once.
_SHARED_SESSION = ("gloo_ranks",)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks into the node ids
def pytest_collection_modifyitems(config, items) -> None:
    """Under pytest-xdist (`--dist loadgroup`, setup.cfg), keep every test of a module that uses a
    module-scoped fixture (a server, a fitted model, a built context) on one worker, so the
    fixture is built once, as in one process; the other tests are dealt out one by one."""
    for item in items:
        defs = getattr(item, "_fixtureinfo", None)
        if defs is None:
            continue
        processes = [name for name in _SHARED_SESSION if name in defs.name2fixturedefs]
        shared = any(
            fixturedefs and fixturedefs[-1].scope in _SHARED_SCOPES and name != "one_torch_thread"
            for name, fixturedefs in defs.name2fixturedefs.items()
        )
        if processes or shared:
            item.add_marker(pytest.mark.xdist_group(processes[0] if processes else item.module.__name__))
