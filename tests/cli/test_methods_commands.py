"""The methods' commands on the command floor: `fit-retriever-rl` trains an encoder folder (and
names a missing utilities file in one line), and `select --utilities` prints how often each
retriever was chosen beside the selector's and the oracle's mean utility."""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from lamp_pl.cli import main
from lamp_pl.data.lamp import load_split
from lamp_pl.learned.selector import train_selector
from lamp_pl.lightning.settings import SELECTOR_TRAINING

pytestmark = pytest.mark.timeout(600)


def _words(tiny_bert: Path) -> list[str]:
    vocab = (tiny_bert / "vocab.txt").read_text().split()
    return sorted(w for w in vocab if w.isalpha() and len(w) > 3)[:12]


def test_fit_retriever_rl_command_writes_an_encoder_folder(tiny_bert, tmp_path, capsys) -> None:
    words = _words(tiny_bert)
    records = [
        {
            "id": f"q{i}",
            "user": f"u{i}",
            "query": words[i],
            "item_texts": [words[i + 1], words[i + 2], words[i + 3]],
            "log_likelihoods": [0.0, -5.0, -5.0],
            "metrics": None,
        }
        for i in range(4)
    ]
    utilities = tmp_path / "utilities.jsonl"
    utilities.write_text("\n".join(json.dumps(r) for r in records))
    args = ["--encoder", str(tiny_bert), "--out_dir", str(tmp_path / "rl"), "--max_epochs", "1"]
    code = main(["fit-retriever-rl", "--train_utilities", str(utilities), *args, "--batch_size", "2"])
    folder = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and folder == tmp_path / "rl" / "encoder" and (folder / "config.json").is_file()

    missing = tmp_path / "no-utilities.jsonl"
    with pytest.raises(SystemExit) as done:
        main(["fit-retriever-rl", "--train_utilities", str(missing), *args])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0]


def test_select_prints_the_choice_shares_and_the_oracle(data_root, tiny_t5, tiny_bert, tmp_path, capsys) -> None:
    questions = load_split(data_root, "LaMP_2", "dev")
    pool = {"bm25": {"retriever": "bm25"}, "recency": {"retriever": "recency"}}
    records = [
        {
            "id": q.id,
            "user": q.user,
            "input": q.input,
            "gold": q.output,
            "items": {name: [] for name in pool},
            "utilities": {"bm25": {"metric": float(i % 2)}, "recency": {"metric": float(i % 3 == 0)}},
        }
        for i, q in enumerate(questions)
    ]
    utilities = tmp_path / "utilities.jsonl"
    utilities.write_text("\n".join(json.dumps(r) for r in records))
    train_selector(records, str(tiny_bert), tmp_path / "rspg", replace(SELECTOR_TRAINING, epochs=1), max_length=32)
    data = ["--data.task", "LaMP_2", "--data.data_dir", str(data_root), "--data.cache_dir", str(tmp_path / "cache")]
    data += ["--data.tokenizer", str(tiny_t5), "--data.retrieval.retriever", "bm25"]
    command = ["select", *data, "--selector", str(tmp_path / "rspg" / "selector.ckpt"), "--pool", json.dumps(pool)]
    code = main([*command, "--out", str(tmp_path / "choices.json"), "--split", "dev", "--utilities", str(utilities)])
    report = json.loads(capsys.readouterr().out)
    choices = json.loads((tmp_path / "choices.json").read_text())["choices"]
    assert code == 0 and report["choices"] == str(tmp_path / "choices.json") and len(choices) == len(records)
    assert sum(report["chosen_share"].values()) == pytest.approx(1.0)
    chosen = [r["utilities"][choices[r["id"]]]["metric"] for r in records]
    assert report["selected"] == pytest.approx(statistics.mean(chosen))
    assert report["oracle"] == pytest.approx(
        statistics.mean(max(u["metric"] for u in r["utilities"].values()) for r in records)
    )
    assert report["oracle"] >= max(report["single"].values())
