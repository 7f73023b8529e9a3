"""Run folders, `--ckpt_path best|last`, weights-only checkpoints, and resume after a kill."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from helpers import base_args
from lamp_pl.cli import main
from lamp_pl.cli.runs import CheckpointResolutionError, resolve_checkpoint, run_folder
from lamp_pl.errors import CheckpointError


def args_without_root(tiny_t5: Path, data_root: Path, cache: Path, task: str = "LaMP_2") -> list[str]:
    """The tiny settings with no `trainer.default_root_dir`, so the run folder is derived."""
    return base_args(tiny_t5, data_root, cache, task)


def resolved(output: str) -> Path:
    found = re.findall(r"lamp_pl: --ckpt_path \w+ -> (\S+)", output)
    assert len(found) == 1, output[-2000:]
    return Path(found[0])


def test_run_folder_rules():
    assert run_folder("LaMP_4", 2, "bm25") == Path("runs/LaMP_4/bm25")
    assert run_folder("LaMP_4", 0, "bm25") == Path("runs/LaMP_4/none"), "k = 0 retrieves nothing"
    assert run_folder("LaMP_4", 1, "contriever", "lr3e-4") == Path("runs/LaMP_4/contriever/lr3e-4")
    with pytest.raises(ValueError, match="plain file name"):
        run_folder("LaMP_4", 1, "bm25", "../elsewhere")


def test_the_cli_derives_the_run_folder_unless_one_is_given(tiny_t5, data_root, tmp_path):
    from lamp_pl.cli.train import LaMPCLI
    from lamp_pl.lightning.datamodule import LaMPDataModule
    from lamp_pl.lightning.module import LaMPModel

    def root(*extra: str) -> str:
        args = [*args_without_root(tiny_t5, data_root, tmp_path / "cache", "LaMP_4"), *extra]
        return LaMPCLI(LaMPModel, LaMPDataModule, args=args, run=False).trainer.default_root_dir

    assert root("--run_name", "try2") == str(Path("runs/LaMP_4/bm25/try2"))
    assert root("--data.k", "0") == str(Path("runs/LaMP_4/none"))
    assert root("--trainer.default_root_dir", str(tmp_path / "mine")) == str(tmp_path / "mine")


def test_two_experiments_in_one_folder_each_test_best_evaluates_its_own(
    tiny_t5, data_root, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    experiments = {"bm25": [], "none": ["--data.k", "0"]}
    for extra in experiments.values():
        main(["fit", *args_without_root(tiny_t5, data_root, tmp_path / "cache"), *extra])
    capsys.readouterr()
    for retriever, extra in experiments.items():
        folder = Path("runs/LaMP_2") / retriever
        main(["test", *args_without_root(tiny_t5, data_root, tmp_path / "cache"), *extra, "--ckpt_path", "best"])
        used = resolved(capsys.readouterr().out)
        # The experiment's own best checkpoint, although the `none` one was written last.
        assert used.is_relative_to(folder) and used.name.startswith("epoch"), used
        assert used == resolve_checkpoint("best", folder)
        state = torch.load(used, map_location="cpu", weights_only=True)  # plain data only
        assert state["datamodule_hyper_parameters"]["k"] == (0 if retriever == "none" else 2)
        assert isinstance(state["datamodule_hyper_parameters"]["retrieval"], dict)
        assert list(folder.rglob("metrics_test.json")), "test wrote into the experiment's folder"

    # A recorded best that is gone is an error, never a silent fallback to last.ckpt.
    resolve_checkpoint("best", "runs/LaMP_2/bm25").unlink()
    with pytest.raises(SystemExit) as exit_:  # one line, exit status 2 (issue 18)
        main(["test", *args_without_root(tiny_t5, data_root, tmp_path / "cache"), "--ckpt_path", "best"])
    assert exit_.value.code == 2 and "missing" in capsys.readouterr().err
    with pytest.raises(CheckpointResolutionError, match="no last.ckpt"):
        resolve_checkpoint("last", "runs/LaMP_3/bm25")


class _Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_malicious_pickle_in_a_checkpoint_is_refused(tiny_t5, data_root, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    folder = tmp_path / "runs" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(
        {
            "callbacks": {"ModelCheckpoint{}": {"best_model_path": str(folder / "last.ckpt")}},
            "payload": _Payload(marker),
        },
        folder / "last.ckpt",
    )
    with pytest.raises(CheckpointError, match="holds pickled objects"):
        resolve_checkpoint("best", tmp_path / "runs")
    args = args_without_root(tiny_t5, data_root, tmp_path / "cache") + [
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
    ]
    with pytest.raises(SystemExit) as exit_:
        main(["test", *args, "--ckpt_path", str(folder / "last.ckpt")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "holds pickled objects" in err and "weights_only" not in err, err
    assert not marker.exists(), "the checkpoint's pickle ran code"


class EpochLog(L.Callback):
    """Appends each training epoch it sees to `log`; raises at the start of epoch `kill_at`
    (a stand-in for a killed process)."""

    def __init__(self, log: str, kill_at: int = -1) -> None:
        self.path, self.kill_at = Path(log), kill_at

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.kill_at:
            raise KeyboardInterrupt("killed")
        with self.path.open("a") as stream:
            stream.write(f"{trainer.current_epoch}\n")


def callbacks_config(path: Path, callbacks: list[dict]) -> list[str]:
    path.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks}}))
    return ["--config", str(path)]


def test_kill_and_resume_redoes_no_finished_epoch(tiny_t5, data_root, tmp_path):
    """No validation at all (so the monitored metric never improves): last.ckpt is still written
    at every epoch's end, and a resume starts at the first unfinished epoch."""
    log = tmp_path / "epochs.txt"
    args = [
        *args_without_root(tiny_t5, data_root, tmp_path / "cache", "LaMP_3"),
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
        "--trainer.max_epochs",
        "4",
        "--trainer.limit_val_batches",
        "0",
    ]
    killer = {"class_path": "test_runs.EpochLog", "init_args": {"log": str(log), "kill_at": 2}}
    try:
        main(["fit", *args, *callbacks_config(tmp_path / "kill.yaml", [killer])])
    except (KeyboardInterrupt, SystemExit):
        pass  # Lightning turns the interrupt into a graceful stop or re-raises it, by version
    assert log.read_text().split() == ["0", "1"]
    last = resolve_checkpoint("last", tmp_path / "runs")
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 1
    plain = {"class_path": "test_runs.EpochLog", "init_args": {"log": str(log)}}
    main(["fit", *args, *callbacks_config(tmp_path / "resume.yaml", [plain]), "--ckpt_path", "last"])
    assert log.read_text().split() == ["0", "1", "2", "3"], "epochs 0 and 1 were not run again"


def test_a_model_checkpoint_given_in_the_config_is_honoured(tiny_t5, data_root, tmp_path):
    mine = tmp_path / "mine"
    args = [
        *args_without_root(tiny_t5, data_root, tmp_path / "cache", "LaMP_3"),
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
    ]
    given = {
        "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
        "init_args": {"dirpath": str(mine), "filename": "mine", "save_top_k": -1},
    }
    main(["fit", *args, *callbacks_config(tmp_path / "given.yaml", [given])])
    assert [p.name for p in mine.iterdir()] == ["mine.ckpt"]
    # No monitoring checkpoint of the module's own; last.ckpt is still written (the one rule).
    assert [p.name for p in (tmp_path / "runs").rglob("*.ckpt")] == ["last.ckpt"]


def test_last_checkpoint_on_a_step_interval(tiny_t5, data_root, tmp_path, monkeypatch):
    args = [
        *args_without_root(tiny_t5, data_root, tmp_path / "cache", "LaMP_3"),
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
        "--trainer.limit_val_batches",
        "0",
    ]
    steps = {"class_path": "lamp_pl.lightning.callbacks.StepCheckpoint", "init_args": {"every_n_train_steps": 1}}
    saved: list[int] = []
    real = L.Trainer.save_checkpoint

    def recording(trainer, filepath, *rest, **kwargs):
        if Path(filepath).name == "last.ckpt":
            saved.append(trainer.global_step)
        return real(trainer, filepath, *rest, **kwargs)

    monkeypatch.setattr(L.Trainer, "save_checkpoint", recording)
    main(["fit", *args, *callbacks_config(tmp_path / "steps.yaml", [steps])])
    assert saved == [1, 2, 2], saved  # after each of the 2 steps, then at the epoch's end


def test_fit_then_test_best_prints_no_lightning_notice(
    tiny_t5, data_root, tmp_path, monkeypatch, capfd, caplog, recwarn
):
    """The demo's own path is quiet: no "configure_callbacks will override existing callbacks" (the
    Trainer's default checkpoint is dropped, not overridden) and, for `test --ckpt_path best` in a
    new process, no "dirpath has changed ... won't be reloaded" (an evaluation writes no checkpoint)."""
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.INFO)  # Lightning's notices propagate to the root logger under pytest
    args = args_without_root(tiny_t5, data_root, tmp_path / "cache")
    main(["fit", *args])
    main(["test", *args, "--ckpt_path", "best"])
    _, err = capfd.readouterr()
    notices = [str(w.message) for w in recwarn] + err.splitlines() + caplog.messages
    for needle in ("will override existing callbacks", "dirpath has changed", "won't be reloaded"):
        assert not [n for n in notices if needle in n], needle
