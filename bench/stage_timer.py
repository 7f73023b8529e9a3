"""A Lightning callback that splits `lamp-pl fit`'s wall time into training and validation.

`bench/vs_official.py` adds it to `lamp-pl fit` (`trainer.callbacks`, with `bench/` on the
`PYTHONPATH`) to compare per-sample training time with the official `Seq2SeqTrainer`'s. Training
time is each epoch's start to its validation's start (batches fetched, forward, backward, optimizer
steps, logging); validation is each validation's start to its end, before the checkpoint callbacks
save (Lightning runs those last), so checkpoint writes count in neither, as on the official side.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback


class StageTimer(Callback):
    """Sums training and validation seconds of a fit and writes them to a JSON file at its end."""

    def __init__(self, out: str) -> None:
        """
        Args:
            out: JSON file written at the end of the fit.
        """
        self.out = Path(out)
        self.train_s = self.val_s = self.sanity_s = 0.0
        self.epochs = 0
        self._epoch: float | None = None
        self._val: float | None = None

    def _close_epoch(self) -> None:
        if self._epoch is not None:
            self.train_s += time.perf_counter() - self._epoch
            self._epoch = None

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._epoch = time.perf_counter()
        self.epochs += 1

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._close_epoch()
        self._val = time.perf_counter()

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self._val is None:
            return
        spent = time.perf_counter() - self._val
        if trainer.sanity_checking:
            self.sanity_s += spent
        else:
            self.val_s += spent
        self._val = None

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._close_epoch()  # an epoch without validation

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        figures = {
            "train_s": self.train_s,
            "val_s": self.val_s,
            "sanity_s": self.sanity_s,
            "epochs": self.epochs,
            "global_step": trainer.global_step,
        }
        for callback in trainer.checkpoint_callbacks:  # the monitoring one (not last.ckpt's)
            if getattr(callback, "monitor", None) and callback.best_model_score is not None:
                figures.update(monitor=callback.monitor, best_score=float(callback.best_model_score))
        self.out.write_text(json.dumps(figures))
