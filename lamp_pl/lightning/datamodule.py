"""LaMPDataModule: the Lightning shell over the plain data pipeline `lamp_pl.pipeline.data.LaMPData`.

It takes the pipeline's constructor (the config's `data:` keys) unchanged and adds only what a
trainer decides: the stage, the rank, the world size and the strategy's collectives.
`prepare_data` does the expensive work once and caches it on disk; `setup` only loads those
caches. Under DDP the one step worth sharding, encoding, runs at the start of `setup` on every
rank (a no-op once cached), because `prepare_data` runs on one process per node while the others
wait. A failure on any rank reaches every rank as an error (see `agree_on_failure`), so no rank
waits forever on a barrier that a failed rank never reaches.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from lamp_pl.pipeline.collective import agree_on_failure
from lamp_pl.pipeline.data import LaMPData


class LaMPDataModule(LaMPData, L.LightningDataModule):
    """Reads a LaMP task, retrieves each question's profile items and emits prompt batches."""

    _prepare_error: BaseException | None = None

    def _keep_settings(self, settings: dict[str, Any]) -> None:
        """The constructor's arguments as the hyper-parameters a checkpoint keeps."""
        self.save_hyperparameters(settings)

    def _stage(self) -> str | None:
        trainer = self.trainer
        return trainer.state.fn.value if trainer is not None and trainer.state.fn is not None else None

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def prepare_data(self) -> None:
        """Build every cache the configured splits need (single process: encoding included).

        Under DDP it runs on one process per node while the others wait at Lightning's next
        barrier; an error here is kept and raised on every rank at the start of `setup`.
        """
        if self._world()[1] == 1:
            self.prepare(self._stage())
            return
        try:
            self.check(self._stage(), read=True)  # fail fast on bad data before ranks start work
        except Exception as error:  # noqa: BLE001 -- raised on every rank by setup's agree_on_failure
            self._prepare_error = error

    def setup(self, stage: str | None = None) -> None:
        """Load `stage`'s tokenized splits; under DDP first build them together (sharded)."""
        rank, world_size = self._world()
        if world_size > 1:
            strategy = self.trainer.strategy
            error, self._prepare_error = self._prepare_error, None
            agree_on_failure(strategy, rank, error)  # prepare_data ran on local rank 0 only
            self.build(self.splits_for(stage), rank, world_size, strategy=strategy)
        self.load(stage)

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.train_split, True, *self._world())

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.val_split, False, *self._world())

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.test_split, False, *self._world())

    def predict_dataloader(self) -> DataLoader:
        return self.loader(self.predict_split, False, *self._world())


__all__ = ["LaMPDataModule"]
