"""The checkpoint callbacks `LaMPModel` adds: `last.ckpt` at every epoch end (and every N steps).

`lamp_pl.cli.runs` resolves `--ckpt_path best|last` against what these write.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint

from lamp_pl.errors import ConfigError


class LastCheckpoint(ModelCheckpoint):
    """Writes `last.ckpt` at the end of every training epoch, whether or not a monitored metric
    improved (or was logged at all). `LaMPModel` always adds one.

    Lightning's own ``save_last`` writes `last.ckpt` only in a step in which a top-k checkpoint
    was saved; this is a top-1 checkpoint of "the latest state" named ``last`` instead.
    """

    def __init__(self, dirpath: str | None = None, every_n_train_steps: int | None = None) -> None:
        super().__init__(
            dirpath=dirpath,
            filename="last",
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,
            every_n_train_steps=every_n_train_steps,
            save_on_train_epoch_end=True,
        )


class StepCheckpoint(LastCheckpoint):
    """Writes `last.ckpt` every `every_n_train_steps` optimizer steps as well (a separate class,
    so that Lightning keeps it beside the module's own checkpoints). In a config::

        trainer:
          callbacks:
            - class_path: lamp_pl.lightning.callbacks.StepCheckpoint
              init_args: {every_n_train_steps: 500}
    """

    def __init__(self, every_n_train_steps: int = 1000, dirpath: str | None = None) -> None:
        if every_n_train_steps < 1:
            raise ConfigError(f"StepCheckpoint: every_n_train_steps must be >= 1 (got {every_n_train_steps})")
        super().__init__(dirpath=dirpath, every_n_train_steps=every_n_train_steps)


def is_trainer_default_checkpoint(callback: ModelCheckpoint) -> bool:
    """Whether `callback` is the plain `ModelCheckpoint()` the Trainer adds when none is given
    (so not one a user configured). Read from its settings; Lightning keeps no flag for it."""
    settings = (
        callback.monitor,
        callback.dirpath,
        callback.filename,
        callback.save_last,
        callback.save_top_k,
        callback._every_n_train_steps,
        callback._every_n_epochs,
        callback._train_time_interval,
    )
    return type(callback) is ModelCheckpoint and settings == (None, None, None, None, 1, 0, 1, None)


__all__ = ["LastCheckpoint", "StepCheckpoint", "is_trainer_default_checkpoint"]
