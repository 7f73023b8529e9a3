"""`lamp-pl score-retrievers`, `fit-selector` and `select`: the RSPG retriever-selection commands.

Typed functions whose docstrings are their `--help` (see `lamp_pl.cli.tree`); each calls its
library function (`lamp_pl.learned.utilities.score_retrievers`,
`lamp_pl.learned.selector.train_selector`, `lamp_pl.learned.selector.select_retrievers`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lamp_pl.errors import ConfigError
from lamp_pl.lightning.settings import SELECTOR_TRAINING, TrainSettings

if TYPE_CHECKING:
    from lamp_pl.lightning.datamodule import LaMPDataModule


def parse_pool(text: str | None) -> dict | None:
    """A pool from JSON text or a JSON file: name -> `RetrievalConfig` overrides."""
    if text is None:
        return None
    try:
        pool = json.loads(Path(text).read_text()) if Path(text).is_file() else json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--pool is neither a JSON file nor JSON text: {error}") from error
    if not isinstance(pool, dict):
        raise ConfigError("--pool must map each retriever's name to its retrieval overrides")
    return pool


def score_retrievers(
    data: LaMPDataModule,
    ckpt_path: Path,
    pool: str | None = None,
    split: str = "train",
    batch_size: int = 32,
    chunk_size: int = 64,
    with_metric: bool = True,
    progress: bool = True,
) -> Path:
    """Score each question's prompt under each retriever of a pool (RSPG utilities, oracle).

    Writes (and prints the path of) the split's per-retriever `utilities` file.

    Args:
        data: The config's data section: its retrieval settings are the base every pool member
            overrides, its prompt settings build the prompts.
        ckpt_path: The generator's Lightning checkpoint.
        pool: JSON text or a JSON file mapping each retriever's name to its retrieval overrides
            (default: the built-in pool).
        split: Whose questions are scored (needs gold outputs).
        batch_size: Prompt and gold pairs per forward pass.
        chunk_size: Questions per resumable chunk file.
        with_metric: Also generate with each retriever's prompt and store the task metric.
        progress: Show a progress bar.
    """
    from lamp_pl.learned.utilities import score_retrievers as score

    return score(
        data,
        ckpt_path,
        parse_pool(pool),
        split,
        batch_size=batch_size,
        chunk_size=chunk_size,
        with_metric=with_metric,
        progress=progress,
    )


def fit_selector(
    train: Path,
    encoder: str,
    out_dir: Path,
    mode: Literal["pre", "post"] = "pre",
    metric: Literal["metric", "log_likelihood"] = "metric",
    temperature: float = 1.0,
    training: TrainSettings = SELECTOR_TRAINING,
    max_length: int = 256,
    reads: Literal["input", "query"] = "input",
) -> Path:
    """Train the RSPG retriever selector (Pre or Post) on per-retriever utilities.

    Prints the selector checkpoint written (`<out_dir>/selector.ckpt`).

    Args:
        train: The utilities file written by `lamp-pl score-retrievers`.
        encoder: The Hugging Face encoder (name or folder) the selector fine-tunes.
        out_dir: Folder of the selector checkpoint.
        mode: `pre` reads the question alone, `post` also each retriever's retrieved items.
        metric: The utility the target distribution follows: the task metric or the log likelihood.
        temperature: Softmax temperature of the target distribution over retrievers.
        training: AdamW learning rate, questions per step, passes over the utilities, warm-up,
            weight decay, and the seed of the initialisation and batch order (`--lr`,
            `--batch_size`, `--max_epochs`, `--seed` ... also work).
        max_length: Encoder input tokens.
        reads: What the selector reads of a question: `input` (all of it) or `query` (the task's
            retrieval query; on LaMP-2 the description without the instruction every question
            repeats, about a tenth of the tokens).
    """
    from lamp_pl.learned.selector import train_selector
    from lamp_pl.learned.utilities import load_retriever_utilities

    records = load_retriever_utilities(train)
    train_selector(
        records,
        encoder,
        out_dir,
        training,
        mode=mode,
        metric=metric,
        temperature=temperature,
        max_length=max_length,
        reads=reads,
    )
    return Path(out_dir) / "selector.ckpt"


def select(
    data: LaMPDataModule,
    selector: Path,
    pool: str,
    out: Path,
    split: list[str] | None = None,
    utilities: Path | None = None,
) -> Path | dict:
    """Write each question's selected retriever for `retrieval.retriever: selected`.

    The file written is the choices file that `retrieval.selector` names. With `utilities`, the
    command also prints how often each retriever was chosen and the selector's mean utility
    beside each single retriever's and the oracle's (the best retriever per question).

    Args:
        data: The config's data section: its retrieval settings are the base every pool member
            overrides.
        selector: The selector checkpoint written by `lamp-pl fit-selector`.
        pool: JSON text or a JSON file mapping each retriever's name to its retrieval overrides
            (the pool the selector was trained on).
        out: The choices JSON file to write.
        split: Whose questions get a retriever (default: every split of the data section that
            has files, so that `fit` and `test` with `retriever: selected` find each question's).
        utilities: The `lamp-pl score-retrievers` file of the same split and pool, for the report.
    """
    from lamp_pl.learned.selector import SelectorModule, select_retrievers
    from lamp_pl.learned.utilities import load_retriever_utilities
    from lamp_pl.lightning.checkpoints import check_checkpoint
    from lamp_pl.retrieval.selected import read_choices, selection_report

    check_checkpoint(selector)  # named as the selector file, before Lightning reads it
    module = SelectorModule.load_from_checkpoint(selector, map_location="cpu")
    written = select_retrievers(module, data, parse_pool(pool) or {}, split, out)
    if utilities is None:
        return written
    report = selection_report(read_choices(written)["choices"], load_retriever_utilities(utilities))
    return {"choices": str(written), **report}


__all__ = ["fit_selector", "parse_pool", "score_retrievers", "select"]
