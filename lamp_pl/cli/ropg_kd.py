"""`lamp-pl ropg-kd`: the ROPG-KD recipe end to end: fit the generator, score items, train the
retriever, re-index, re-fit, test, and compare the untrained with the trained encoder.

An entry point (it runs `lamp-pl fit` / `test` through `lamp_pl.cli.tree.main`), built on the
library functions of `lamp_pl.learned`.

The recipe's own settings live in a small YAML file (shipped: ``LaMP_2/ropg_kd``, `lamp-pl configs LaMP_2/ropg_kd` prints it): the
generator's LightningCLI configs and overrides, the work folder, N, and the `fit_retriever`
arguments. Every stage reuses its cache: a second run only prints the table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

from lamp_pl.errors import ConfigError, reading
from lamp_pl.lightning.checkpoints import load_checkpoint
from lamp_pl.shipped import resolve_config


def best_checkpoint(root: str | Path) -> Path:
    """The best checkpoint of the newest fit under `root` (named by its `last.ckpt`), else that."""
    found = sorted(Path(root).rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"no last.ckpt under {root}: the generator fit did not save one")
    states = load_checkpoint(found[-1]).get("callbacks", {})
    best = next((s.get("best_model_path") for k, s in states.items() if k.startswith("ModelCheckpoint")), None)
    return Path(best) if best and Path(best).is_file() else found[-1]


def _test_metrics(root: Path) -> dict:
    found = sorted(root.rglob("metrics_test.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text()) if found else {}


def _generator_run(configs: list[str], overrides: list[str], root: Path) -> tuple[Path, dict]:
    """fit (skipped when a checkpoint exists) then test with the best checkpoint."""
    from lamp_pl.cli.tree import main

    args = [a for c in configs for a in ("--config", c)] + overrides + ["--trainer.default_root_dir", str(root)]
    if not list(root.rglob("last*.ckpt")):
        main(["fit", *args])
    ckpt = best_checkpoint(root)
    if not _test_metrics(root):
        main(["test", *args, "--ckpt_path", str(ckpt)])
    return ckpt, _test_metrics(root)


def ropg_kd(recipe: str | Path | dict[str, Any]) -> dict:
    """Run the recipe and return (and print) the comparison table.

    Args:
        recipe: A recipe YAML file or its mapping: ``generator`` (list of LightningCLI configs),
            ``overrides`` (``--data.x value`` arguments), ``fit_overrides`` (other LightningCLI
            arguments of the generator runs, e.g. ``--trainer.max_epochs``), ``workdir``, ``candidates`` (N),
            ``score`` (`score_items` keyword arguments), ``retriever`` (`lamp-pl fit-retriever`'s
            options: `TrainSettings` fields such as ``lr``, ``max_epochs``, the rest `train_retriever`
            keyword arguments) and ``attribute_split`` (split attributed with each generator, or null) with
            ``attribute_overrides`` (data overrides of the attributed prompts, e.g. a larger k),
            and ``method``: ``kd`` (distillation) or ``rl`` (policy gradient; ``retriever`` may then
            also set ``k`` and ``samples``).

    Returns:
        ``{"untrained": {...}, "trained": {...}}``: each with the generator's test metrics, the
        planted top-1 hit rate of the retriever, and (when attributed) the attribution check.
    """
    from lamp_pl.cli.config import datamodule_from_config
    from lamp_pl.learned.attribution import attribute
    from lamp_pl.learned.planted import attribution_planted_rate, planted_hit_rate
    from lamp_pl.learned.ropg import train_retriever
    from lamp_pl.learned.scoring import score_items
    from lamp_pl.lightning.settings import ENCODER_TRAINING

    if isinstance(recipe, dict):
        spec = recipe
    else:
        with reading(recipe, "recipe"):
            spec = yaml.safe_load(Path(resolve_config(recipe, "recipe")).read_text(encoding="utf-8"))
    if not isinstance(spec, dict) or "generator" not in spec:
        raise ConfigError(f"{recipe}: a recipe is a YAML mapping with a `generator` list of configs")
    configs, overrides = list(spec["generator"]), [str(o) for o in spec.get("overrides", [])]
    workdir, candidates = Path(spec.get("workdir", "runs/ropg_kd")), int(spec.get("candidates", 20))
    rows: dict[str, dict] = {}

    fit_overrides = [str(o) for o in spec.get("fit_overrides", [])]

    def evaluate(name: str, extra: list[str]) -> tuple[Any, Path]:
        ckpt, metrics = _generator_run(configs, overrides + extra + fit_overrides, workdir / name)
        dm = datamodule_from_config(configs, overrides + extra)
        dm.build([dm.test_split])
        row = {**metrics, **{f"planted/{k}": v for k, v in planted_hit_rate(dm, dm.test_split).items()}}
        split = spec.get("attribute_split", "dev")
        if split:
            # Attribution needs several items per prompt: its own k (and budget) may differ.
            attr_dm = datamodule_from_config(
                configs, overrides + extra + [str(o) for o in spec.get("attribute_overrides", [])]
            )
            out = attribute(attr_dm, ckpt, split=split, out=workdir / name / f"attribution_{split}.json")
            row.update({f"attribution/{k}": v for k, v in attribution_planted_rate(out, attr_dm).items()})
        rows[name] = row
        return dm, ckpt

    base_dm, base_ckpt = evaluate("untrained", [])
    k_max = ["--data.retrieval.k_max", str(max(candidates, base_dm.retrieval.k_max))]
    scoring_dm = datamodule_from_config(configs, overrides + k_max)
    score_kwargs = dict(spec.get("score", {}))
    train = score_items(scoring_dm, base_ckpt, candidates, scoring_dm.train_split, **score_kwargs)
    dev = score_items(scoring_dm, base_ckpt, candidates, scoring_dm.val_split, **score_kwargs)
    method = spec.get("method", "kd")
    if method not in ("kd", "rl"):
        raise ConfigError(f"recipe method must be 'kd' or 'rl', got {method!r}")
    training, options = ENCODER_TRAINING.take(spec.get("retriever", {}))
    encoder = workdir / "retriever" / "encoder"
    if not (encoder / "config.json").is_file():
        encoder = train_retriever(
            train,
            base_dm.retrieval.encoder,
            workdir / "retriever",
            training,
            method=method,
            val_utilities=dev,
            normalize=bool(base_dm.retrieval.normalize),
            **options,
        )
    evaluate("trained", ["--data.retrieval.encoder", str(encoder)])
    print_table(rows)
    (workdir / "table.json").write_text(json.dumps(rows, indent=1))
    return rows


def print_table(rows: dict[str, dict]) -> None:
    """A Markdown table: one row per encoder, one column per metric."""
    columns = sorted({k for row in rows.values() for k in row})
    print("| encoder | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, row in rows.items():
        print(
            f"| {name} | "
            + " | ".join(f"{row[c]:.4f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns)
            + " |"
        )


def run(recipe: Path, /) -> None:
    """Run the whole ROPG-KD recipe: fit, score, train the retriever, re-index, re-fit, test.

    Prints the table comparing the untrained with the trained encoder (also written to
    `<workdir>/table.json`); every stage reuses its cache, so a second run only prints it.

    Args:
        recipe: The recipe's YAML file or shipped name (e.g. `LaMP_2/ropg_kd_small`; see `ropg_kd`).
    """
    ropg_kd(recipe)


def ropg(recipe: Path, /, method: Literal["kd", "rl"] = "kd", workdir: Path | None = None) -> None:
    """The ROPG recipe with the retriever trained by distillation or policy gradient (--method kd|rl).

    Runs the `ropg-kd` recipe with the chosen trainer and prints its comparison table.

    Args:
        recipe: The recipe's YAML file or shipped name (e.g. `LaMP_2/ropg_kd_small`; see `ropg_kd`).
        method: `kd` (distillation, ROPG-KD) or `rl` (policy gradient, ROPG-RL).
        workdir: The recipe's working folder (default: the recipe's `workdir`, plus `_rl` for `rl`).
    """
    with reading(recipe, "recipe"):
        spec = yaml.safe_load(Path(resolve_config(recipe, "recipe")).read_text(encoding="utf-8"))
    if not isinstance(spec, dict):
        raise ConfigError(f"recipe {recipe} is not a YAML mapping")
    default = str(spec.get("workdir", "runs/ropg_kd")) + ("_rl" if method == "rl" else "")
    ropg_kd({**spec, "method": method, "workdir": str(workdir or default)})


__all__ = ["best_checkpoint", "print_table", "ropg", "ropg_kd", "run"]
