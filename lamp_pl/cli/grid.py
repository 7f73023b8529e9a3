"""`lamp-pl grid`: a study's grid in one command (the library is `lamp_pl.studygrid`).

Every combination of the axes given (task, split protocol, model fragment, retriever, k,
ablation, order, user context, seed) is trained (unless `--no-fit`) and tested in its own run
folder, concurrently over local workers or as a Slurm job array; the data caches are built once
first; done points are skipped on a rerun, killed ones resume; one table (CSV and Markdown) per
point and one per condition over seeds collect the test metrics.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from lamp_pl.shipped import resolve_config
from lamp_pl.studygrid.axes import AXIS_NAMES, CONFIG_KEYS, Point, extra_settings
from lamp_pl.studygrid.axes import combinations as axis_combinations

AXES = {name: CONFIG_KEYS[name] for name in ("retriever", "k", "ablation", "order", "user_context")}
HELP = {
    "task": "NAME or NAME=DATA_DIR, e.g. LaMP_1 LaMP_2",
    "split": "NAME=DATA_DIR per split protocol, e.g. user=data/user time=data/time",
    "model": "model config fragments (files or shipped names), e.g. model/seq2seq model/causal_lora",
    "retriever": "e.g. contriever bm25 recency random other_users_random",
    "k": "e.g. 0 1 4 0.5",
    "ablation": "both only_input only_output decouple",
    "order": "start end middle random",
    "user_context": "none user_id",
    "seed": "e.g. 0 1 2 (mean/std over seeds in summary.md)",
}


def configured_axes(configs: list[str]) -> dict[str, str]:
    """The settings the config files give (later files win), as strings (see `axes.CONFIG_KEYS`)."""
    from lamp_pl.cli.config import configured_values

    return configured_values(configs, CONFIG_KEYS)


def combinations(args: argparse.Namespace) -> list[dict[str, str]]:
    """One dict per grid point, over the axes set in `args` (others stay as configured)."""
    axes = {axis: getattr(args, axis) for axis in AXIS_NAMES if getattr(args, axis, None)}
    return [point.values for point in axis_combinations(axes)]


def distinct_points(points: list[dict[str, str]], configured: dict[str, str]) -> list[tuple[dict, dict, int]]:
    """Each point with the overrides that run it and the index of the first equal point."""
    from lamp_pl.studygrid.plan import plan_grid

    plan = plan_grid([Point(p) for p in points], configured, [], [], Path("."), True)
    index = {run.point.name: at for at, run in enumerate(plan.runs)}
    return [(run.point.values, run.overrides, index[run.same_as or run.point.name]) for run in plan.runs]


def parser() -> argparse.ArgumentParser:
    """The grid's options; unknown `--data.x` / `--trainer.x` options pass on to every run."""
    p = argparse.ArgumentParser(prog="lamp-pl grid", description=__doc__.splitlines()[0])
    p.add_argument(
        "--config", action="append", default=[], help="LightningCLI config file or shipped name (repeatable)"
    )
    p.add_argument("--recipe", help="a recipe file, or a shipped recipe's name (e.g. demo, lamp_main_table)")
    for axis in AXIS_NAMES:
        names = dict.fromkeys([f"--{axis}", f"--{axis.replace('_', '-')}"])
        p.add_argument(*names, dest=axis, nargs="+", help=HELP[axis])
    p.add_argument("--out", default="runs/grid", help="folder for the runs and the tables")
    p.add_argument("--no-fit", "--no_fit", dest="fit", action="store_false", help="test only (zero-shot)")
    p.add_argument("--launcher", choices=("local", "slurm"), default="local")
    p.add_argument("--devices_per_point", type=int, default=1, help="GPUs per point (CPU threads without GPUs)")
    p.add_argument("--workers", type=int, help="concurrent local points (default: as the devices allow)")
    p.add_argument("--partition", help="slurm partition")
    p.add_argument("--time_min", type=int, default=60, help="slurm time limit per point (minutes)")
    p.add_argument("--gpus_per_point", type=int, default=1, help="slurm GPUs per point")
    p.add_argument("--cpus_per_point", type=int, help="slurm CPUs per point")
    p.add_argument("--mem_gb", type=int, help="slurm memory per point (GB)")
    p.add_argument("--sbatch", nargs="*", default=[], help="extra sbatch options KEY=VALUE (e.g. qos=high)")
    p.add_argument("--cluster", help="submitit cluster (default: detect Slurm; 'local' runs the array here)")
    p.add_argument("--baseline", help="AXIS=VALUE row the bootstrap intervals compare with (e.g. retriever=none)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--no_plots", dest="plots", action="store_false", help="no PNG per axis")
    p.add_argument("--dry_run", action="store_true", help="print the plan and an estimate; run nothing")
    p.add_argument("--samples_per_second", type=float, help="rate for the dry run's device-hour estimate")
    return p


def main(argv: list[str] | None = None) -> int:
    """Fit and test every combination of the study's axes; write one table."""
    from lamp_pl.studygrid.launchers import SlurmOptions
    from lamp_pl.studygrid.stats import parse_baseline

    args, extra = parser().parse_known_args(argv)
    # Names are checked here (one line listing the shipped names), and kept as given: each point
    # runs `lamp-pl fit/test`, which resolves them, so the plan reads `--config demo`.
    for config in args.config:
        resolve_config(config)
    for fragment in args.model or []:
        resolve_config(fragment, "--model")
    out = Path(args.out)
    if args.recipe:
        from lamp_pl.studygrid.recipes import load_recipe, recipe_path

        recipe = load_recipe(recipe_path(args.recipe))
        grids = [
            (g.name, g.configs + args.config, g.axes, g.extra + extra, g.fit and args.fit, g.predict)
            for g in recipe.grids
        ]
        baseline = args.baseline or recipe.baseline
        published = recipe.published
    else:
        if not args.config:
            parser().error("--config (or --recipe) is required")
        axes = {axis: getattr(args, axis) for axis in AXIS_NAMES if getattr(args, axis)}
        grids, baseline, published, recipe = [("", args.config, axes, extra, args.fit, False)], args.baseline, [], None
    from lamp_pl.studygrid.axes import check_values
    from lamp_pl.studygrid.checks import check_axes, check_baseline

    for _, _, axes_of, _, _, _ in grids:  # every refusal before anything is built
        check_values(axes_of)
        check_axes(axes_of, folders=not args.dry_run)
    if baseline:
        check_baseline(parse_baseline(baseline), [grid[2] for grid in grids])
    sbatch = dict(item.partition("=")[::2] for item in args.sbatch)
    slurm = SlurmOptions(
        args.partition,
        args.time_min,
        args.gpus_per_point,
        args.cpus_per_point,
        args.mem_gb,
        sbatch=sbatch,
        cluster=args.cluster,
    )
    return run(grids, out, args, slurm, parse_baseline(baseline) if baseline else None, published, recipe)


def run(grids: list, out: Path, args: argparse.Namespace, slurm, baseline, published: list, recipe) -> int:
    """Plan each grid (in `out/<name>`), then print the plan (dry run) or run it and its report."""
    from lamp_pl.studygrid.dryrun import describe_plan
    from lamp_pl.studygrid.plan import plan_grid
    from lamp_pl.studygrid.run import GridOptions, run_grid

    options = GridOptions(
        args.launcher,
        args.devices_per_point,
        args.workers,
        slurm,
        baseline,
        published,
        args.plots,
        args.resamples,
        entry="lamp_pl.cli:main",  # each point runs `lamp-pl fit/test` through this command floor
    )
    chosen: dict = {}
    code = 0
    for name, configs, axes, extra, fit, predict in grids:
        configured = {**configured_axes(configs), **extra_settings(extra)}
        plan = plan_grid(axis_combinations(axes), configured, configs, extra, out / name if name else out, fit)
        plan.predict = predict
        here = recipe.published_for(name) if recipe else published
        if args.dry_run:
            print(describe_plan(plan, args.devices_per_point, args.samples_per_second, here, name))
            continue
        states = run_grid(plan, dataclasses.replace(options, published=here))
        print((plan.out / "summary.md").read_text())
        print(f"lamp-pl grid: wrote {plan.out / 'results.md'} and {plan.out / 'summary.md'}")
        if any(state["status"] != "done" for state in states.values()):
            code = 1
        elif recipe and recipe.submission and predict:
            from lamp_pl.studygrid.recipes import submission_files

            split = recipe.submission.get("split", "test")
            submission_files(plan, recipe.submission.get("values", {}), split, chosen)
    if chosen:
        from lamp_pl.studygrid.recipes import write_submission

        for protocol, (predictions, questions) in chosen.items():
            path = write_submission(predictions, questions, out / f"submission_{protocol}.zip")
            print(f"lamp-pl grid: wrote the leaderboard submission {path} ({len(predictions)} tasks)")
    return code
