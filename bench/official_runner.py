"""Run one unmodified official LaMP script in the official code's own environment, offline.

Used by `bench/vs_official.py`; run with the official checkout's Python (transformers 4.27):

    OFFICIAL_PYTHON bench/official_runner.py --lamp LAMP_DIR --record OUT.json [--trainer] SCRIPT.py -- ARGS...

It executes `LAMP_DIR/SCRIPT.py` as `__main__` from `LAMP_DIR` (the script's file is read, never
copied or changed on disk) after these run-time replacements, each printed as it is made:

* with `--trainer`, `evaluate.load(name)` returns a local equivalent of the hub metric (scikit-learn for accuracy,
  f1, mae and mse; `rouge_score` with the bootstrap aggregator's `mid`, as `evaluate`'s rouge;
  sacreBLEU's corpus BLEU; NLTK's METEOR when its data is installed, else NaN): the hub cannot be
  reached here;
* without CUDA, `.to("cuda:0")` of modules and tokenizer outputs goes to the CPU;
* `os.join` is `os.path.join` (`train_llm.py` calls the former after printing its test metrics);
* `--fix LINE=>REPLACEMENT` edits one line of the source in memory (`rank_profiles.py`'s LaMP-2
  branch unpacks two of the three values its query/corpus maker returns).

With `--trainer` (train_llm.py, evaluate_llm.py) it also times `Seq2SeqTrainer.train`, `evaluate` and checkpoint saves (start and end of each call), captures the decoded
predictions each evaluation scores, and writes them with the prompts the script built (the
`source` column of its datasets) to the record file. Nothing here comes from the official code.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

RECORD: dict[str, Any] = {"patches": [], "fixes": [], "evaluations": [], "timers": {}, "overhead_s": 0.0}


def note(message: str) -> None:
    """Print and record one run-time replacement."""
    print(f"[official runner] {message}", flush=True)
    RECORD["patches"].append(message)


def _rouge(predictions: list[str], references: list[Any], **_: Any) -> dict[str, float]:
    from rouge_score import rouge_scorer, scoring

    types = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    scorer = rouge_scorer.RougeScorer(types, use_stemmer=False)
    aggregator = scoring.BootstrapAggregator()
    means = dict.fromkeys(types, 0.0)
    for reference, prediction in zip(references, predictions):
        many = isinstance(reference, list | tuple)
        score = scorer.score_multi(reference, prediction) if many else scorer.score(reference, prediction)
        aggregator.add_scores(score)
        for name in types:
            means[name] += score[name].fmeasure / max(1, len(predictions))
    RECORD.setdefault("rouge_means", []).append(means)  # the plain mean, for an exact comparison
    result = aggregator.aggregate()
    return {name: result[name].mid.fmeasure for name in types}


def _sacrebleu(predictions: list[str], references: list[list[str]], **_: Any) -> dict[str, float]:
    try:
        import sacrebleu
    except ImportError:
        note("sacrebleu is not installed in the official environment: BLEU reported as NaN")
        return {"score": math.nan}
    transposed = [[refs[i] for refs in references] for i in range(len(references[0]))]
    return {"score": sacrebleu.corpus_bleu(predictions, transposed).score}


def _meteor(predictions: list[str], references: list[list[str]], **_: Any) -> dict[str, float]:
    try:
        from nltk import word_tokenize
        from nltk.translate import meteor_score

        scores = [
            meteor_score.meteor_score(
                [word_tokenize(r) for r in refs], word_tokenize(pred), alpha=0.9, beta=3, gamma=0.5
            )
            for refs, pred in zip(references, predictions)
        ]
    except LookupError:
        if "meteor: NLTK data missing" not in " ".join(RECORD["patches"]):
            note("meteor: NLTK data missing (wordnet, punkt): reported as NaN")
        return {"meteor": math.nan}
    return {"meteor": sum(scores) / max(1, len(scores))}


def _classification(name: str, predictions: list[Any], references: list[Any], **kw: Any) -> dict[str, float]:
    from sklearn import metrics

    if name == "accuracy":
        return {"accuracy": float(metrics.accuracy_score(references, predictions))}
    if name == "f1":
        score = metrics.f1_score(
            references, predictions, labels=kw.get("labels"), pos_label=1, average=kw.get("average", "binary")
        )
        return {"f1": float(score)}
    if name == "mae":
        return {"mae": float(metrics.mean_absolute_error(references, predictions))}
    mse = float(metrics.mean_squared_error(references, predictions))
    return {"mse": mse if kw.get("squared", True) else math.sqrt(mse)}


class LocalMetric:
    """What `evaluate.load(name)` returns here: `.compute(predictions=, references=, **kw)`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def compute(self, predictions: Any = None, references: Any = None, **kwargs: Any) -> dict[str, float]:
        predictions, references = list(predictions), list(references)
        if self.name == "rouge":
            return _rouge(predictions, references, **kwargs)
        if self.name == "sacrebleu":
            return _sacrebleu(predictions, references, **kwargs)
        if self.name == "meteor":
            return _meteor(predictions, references, **kwargs)
        return _classification(self.name, predictions, references, **kwargs)


def install_local_metrics() -> None:
    """Replace `evaluate.load` by `LocalMetric` (the hub metric scripts cannot be fetched)."""
    import evaluate

    known = {"accuracy", "f1", "mae", "mse", "rouge", "sacrebleu", "meteor"}

    def load(name: str, *args: Any, **kwargs: Any) -> LocalMetric:
        if name not in known:
            raise ValueError(f"official runner: no local equivalent of the hub metric {name!r}")
        note(f"evaluate.load({name!r}) -> local equivalent (no hub)")
        return LocalMetric(name)

    evaluate.load = load


def redirect_cuda() -> None:
    """Without CUDA, `.to("cuda...")` of a module or a tokenizer's output stays on the CPU."""
    import torch
    import transformers

    if torch.cuda.is_available():
        return

    def on_cpu(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        def swap(value: Any) -> Any:
            return "cpu" if str(value).startswith("cuda") else value

        return tuple(swap(a) for a in args), {k: swap(v) for k, v in kwargs.items()}

    for owner in (torch.nn.Module, transformers.BatchEncoding):
        original = owner.to

        def to(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            args, kwargs = on_cpu(args, kwargs)
            return _original(self, *args, **kwargs)

        owner.to = to  # type: ignore[method-assign]
    note('no CUDA here: .to("cuda:0") of models and tokenizer outputs -> "cpu"')


def _timed(owner: Any, name: str, key: str) -> None:
    original = getattr(owner, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            RECORD["timers"].setdefault(key, []).append([start, time.perf_counter()])

    setattr(owner, name, wrapper)


def instrument_trainer() -> None:
    """Time train / evaluate / checkpoint saves, and keep each evaluation's decoded predictions."""
    import numpy as np
    from transformers import Seq2SeqTrainer, Trainer, TrainerCallback

    _timed(Trainer, "train", "train")
    _timed(Seq2SeqTrainer, "evaluate", "evaluate")
    _timed(Trainer, "_save_checkpoint", "save")
    if hasattr(Trainer, "_load_best_model"):
        _timed(Trainer, "_load_best_model", "load_best")
    init = Seq2SeqTrainer.__init__

    class EpochClock(TrainerCallback):
        """Each epoch's training batches: begin to end, before the epoch's evaluation and save."""

        def on_epoch_begin(self, *args: Any, **kwargs: Any) -> None:
            RECORD["timers"].setdefault("epoch", []).append([time.perf_counter(), None])

        def on_epoch_end(self, *args: Any, **kwargs: Any) -> None:
            RECORD["timers"]["epoch"][-1][1] = time.perf_counter()

    def capturing_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.add_callback(EpochClock())
        score, tokenizer = self.compute_metrics, self.tokenizer
        if score is None:
            return

        def compute_metrics(eval_preds: Any) -> Any:
            start = time.perf_counter()
            preds = eval_preds.predictions[0] if isinstance(eval_preds.predictions, tuple) else eval_preds.predictions
            preds = np.where(preds != -100, preds, tokenizer.pad_token_id)
            decoded = [p.strip() for p in tokenizer.batch_decode(preds, skip_special_tokens=True)]
            RECORD["overhead_s"] += time.perf_counter() - start
            result = score(eval_preds)
            RECORD["evaluations"].append({"predictions": decoded, "metrics": result})
            return result

        self.compute_metrics = compute_metrics

    Seq2SeqTrainer.__init__ = capturing_init  # type: ignore[method-assign]


def collect(namespace: dict[str, Any]) -> None:
    """The prompts the script built, and the trainer's history, from the script's globals."""
    prompts = {}
    for name in ("train_dataset", "eval_dataset", "test_dataset"):
        dataset = namespace.get(name)
        if dataset is not None and hasattr(dataset, "column_names") and "source" in dataset.column_names:
            prompts[name] = dict(zip(dataset["id"], dataset["source"]))
    RECORD["prompts"] = prompts
    trainer = namespace.get("trainer")
    if trainer is not None:
        RECORD["log_history"] = trainer.state.log_history
        RECORD["best_model_checkpoint"] = trainer.state.best_model_checkpoint
        RECORD["best_metric"] = trainer.state.best_metric


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lamp", type=Path, required=True, help="the official checkout's LaMP folder")
    parser.add_argument("--record", type=Path, required=True, help="JSON file this run writes")
    parser.add_argument("--fix", action="append", default=[], help="LINE=>REPLACEMENT, applied in memory")
    parser.add_argument("--trainer", action="store_true", help="local metrics; time and capture the trainer")
    parser.add_argument("script", help="e.g. rank_profiles.py")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    lamp = opts.lamp.resolve()
    path = lamp / opts.script
    source = path.read_text()
    for fix in opts.fix:
        old, new = fix.split("=>", 1)
        if source.count(old) != 1:
            raise SystemExit(f"official runner: {path}: expected one occurrence of {old!r}")
        source = source.replace(old, new)
        RECORD["fixes"].append({"from": old, "to": new})
        print(f"[official runner] {opts.script}: {old.strip()!r} -> {new.strip()!r} (in memory)", flush=True)
    import numpy
    import torch
    import transformers

    RECORD["versions"] = {
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    os.chdir(lamp)
    sys.path.insert(0, str(lamp))
    if opts.trainer:
        install_local_metrics()
        instrument_trainer()
    redirect_cuda()
    if not hasattr(os, "join"):
        os.join = os.path.join  # type: ignore[attr-defined]
        note("os.join -> os.path.join (train_llm.py's last line)")
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args
    sys.argv = [str(path), *args]
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path), "__builtins__": __builtins__}
    start = time.perf_counter()
    exec(compile(source, str(path), "exec"), namespace)
    RECORD["script_s"] = time.perf_counter() - start
    after = time.perf_counter()
    collect(namespace)
    RECORD["overhead_s"] += time.perf_counter() - after
    opts.record.write_text(json.dumps(RECORD, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
