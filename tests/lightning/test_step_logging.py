"""The training loss reaches the loggers at the same steps with the same values whether it is
logged on every step (a progress bar shows it) or only on the steps the loggers write."""

from __future__ import annotations

import csv
from pathlib import Path

from helpers import tiny_args
from lamp_pl.cli import main


def _logged_losses(root: Path) -> list[tuple[str, str]]:
    (metrics,) = root.rglob("metrics.csv")
    rows = list(csv.DictReader(metrics.open()))
    return [(r["step"], r["train/loss"]) for r in rows if r.get("train/loss")]


def test_the_loggers_get_the_same_losses_with_and_without_a_progress_bar(tiny_t5, data_root, tmp_path) -> None:
    runs = {}
    for bar in ("true", "false"):
        folder = tmp_path / f"bar_{bar}"
        args = tiny_args(tiny_t5, data_root, folder, "LaMP_2")
        main(
            ["fit", *args, "--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "2"]
            + ["--data.batch_size", "2", "--trainer.enable_progress_bar", bar, "--seed_everything", "0"]
        )
        runs[bar] = _logged_losses(folder / "runs")
    assert len(runs["true"]) >= 2, runs
    assert runs["true"] == runs["false"]


def test_the_loss_is_logged_every_step_when_a_bar_or_a_train_monitor_reads_it() -> None:
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import ModelCheckpoint

    from lamp_pl.lightning.steplog import loss_read_every_step

    bare = SimpleNamespace(progress_bar_callback=None, callbacks=[ModelCheckpoint(monitor="val/accuracy")])
    assert not loss_read_every_step(bare)
    assert loss_read_every_step(SimpleNamespace(progress_bar_callback=object(), callbacks=[]))
    assert loss_read_every_step(
        SimpleNamespace(progress_bar_callback=None, callbacks=[ModelCheckpoint(monitor="train/loss")])
    )
