"""`lamp-pl grid`: the user-profile study's grid in one command.

Every combination of retriever, k, ablation and order is trained (unless `--no-fit`) and tested
in turn, each in its own run folder; the index and retrieval caches are shared, so only the
first combination that needs an encoder pays for encoding. One table (CSV and Markdown) collects
the test metrics.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path

from lamp_pl.errors import reading

AXES = {
    "retriever": "data.retrieval.retriever",
    "k": "data.k",
    "ablation": "data.prompt.ablation",
    "order": "data.prompt.order",
    "user_context": "data.prompt.user_context",
}


def combinations(args: argparse.Namespace) -> list[dict[str, str]]:
    """One dict per grid point, over the axes given on the command line (others stay as configured)."""
    axes = {name: getattr(args, name) for name in AXES if getattr(args, name)}
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def configured_axes(configs: list[str]) -> dict[str, str]:
    """The grid axes' values set by the config files (later files win), as strings."""
    import yaml

    found: dict[str, str] = {}
    for config in configs:
        with reading(config, "config"):
            document = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
        for name, dotted in AXES.items():
            value = document
            for key in dotted.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                found[name] = str(value)
    return found


def distinct_points(points: list[dict[str, str]], configured: dict[str, str]) -> list[tuple[dict, dict, int]]:
    """Each point with the overrides that run it and the index of the first point with the same
    effective settings (see `lamp_pl.studies.effective_settings`); equal points run once."""
    from lamp_pl.studies import effective_settings

    seen: dict[tuple, int] = {}
    out = []
    for index, point in enumerate(points):
        settings = effective_settings(point, configured)
        # Pass what the point sets plus what the no-op rules changed from the configs.
        overrides = {
            name: value
            for name, value in settings.items()
            if name in AXES and (name in point or configured.get(name) != value)
        }
        first = seen.setdefault(tuple(sorted(settings.items())), index)
        out.append((point, overrides, first))
    return out


def run_combination(configs: list[str], point: dict[str, str], run_dir: Path, fit: bool, extra: list[str]) -> dict:
    """Fit (optional) then test one grid point; return its test metrics."""
    from lamp_pl.cli import main

    base = [arg for config in configs for arg in ("--config", config)]
    overrides = [arg for name, value in point.items() for arg in (f"--{AXES[name]}", str(value))]
    common = base + overrides + ["--trainer.default_root_dir", str(run_dir)] + extra
    if fit:
        main(["fit", *common])
        main(["test", *common, "--ckpt_path", "best"])
    else:
        main(["test", *common])
    found = sorted(run_dir.rglob("metrics_*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise RuntimeError(f"grid point {point} wrote no metrics under {run_dir}")
    return json.loads(found[-1].read_text())


def run_points(configs: list[str], points: list[dict[str, str]], out: Path, fit: bool, extra: list[str]) -> list[dict]:
    """Run every grid point (each in `out/<name>`) and return the table rows; a point with the same
    effective settings as an earlier one is reported and gets that point's metrics, with `same_as`."""
    rows: list[dict] = []
    names: list[str] = []
    for point, overrides, first in distinct_points(points, configured_axes(configs)):
        names.append("-".join(f"{key}={value}" for key, value in point.items()) or "default")
        if first < len(rows):  # same prompts as an earlier point: reported, not run twice
            print(f"lamp-pl grid: {names[-1]} gives the same prompts as {names[first]}; not run again")
            rows.append({**{k: v for k, v in rows[first].items() if k != "same_as"}, **point, "same_as": names[first]})
        else:
            metrics = run_combination(configs, overrides, out / names[-1], fit, extra)
            rows.append({**point, **{key.split("/", 1)[-1]: value for key, value in metrics.items()}})
        write_tables(rows, out)  # keep a usable table even if a later point fails
    return rows


def write_tables(rows: list[dict], out: Path) -> tuple[Path, Path]:
    """Write `results.csv` and `results.md` (one row per combination)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    csv_path, md_path = out / "results.csv", out / "results.md"
    with csv_path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{row.get(c):.4f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def main(argv: list[str] | None = None) -> int:
    """Fit and test every combination of the study's axes; write one table.

    Takes `--config` files and `--data.x` / `--trainer.x` overrides as `fit` does, passed on to
    each grid point, plus one list of values per axis (argparse: `--k 0 1 4`).
    """
    parser = argparse.ArgumentParser(prog="lamp-pl grid", description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", required=True, help="LightningCLI config (repeatable)")
    parser.add_argument("--retriever", nargs="+", help="e.g. contriever bm25 recency random other_users_random")
    parser.add_argument("--k", nargs="+", help="e.g. 0 1 4 0.5")
    parser.add_argument("--ablation", nargs="+", help="both only_input only_output decouple")
    parser.add_argument("--order", nargs="+", help="start end middle random")
    parser.add_argument("--user-context", dest="user_context", nargs="+", help="none user_id")
    parser.add_argument("--out", default="runs/grid", help="folder for the runs and the results table")
    parser.add_argument("--no-fit", dest="fit", action="store_false", help="test only (zero-shot)")
    args, extra = parser.parse_known_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run_points(args.config, combinations(args), out, args.fit, extra)
    csv_path, md_path = write_tables(rows, out)
    print(md_path.read_text())
    print(f"lamp-pl grid: wrote {csv_path} and {md_path}")
    return 0
