"""The tables and target lines `bench/vs_official.py` prints."""

from __future__ import annotations

import argparse
from typing import Any

TARGETS = {"ranking": 3.0, "training": 1.0, "evaluation": 1.5, "end to end": 1.0}


def _ratio(official: float, ours: float) -> float:
    return official / ours if ours > 0 else float("inf")


def _met(value: float, target: float, strict: bool = False) -> str:
    ok = value > target if strict else value >= target
    return f"{value:.2f}x ({'met' if ok else 'NOT met'})"


def _row(name: str, official: float, ours: float, agree: str, unit: str = "{:.1f}", cpu: dict | None = None) -> str:
    """One table row: wall (or per-sample) figures and their ratio, then CPU seconds and theirs."""
    cells = [name, unit.format(official), unit.format(ours), f"{_ratio(official, ours):.2f}x"]
    if cpu:
        ratio = _ratio(cpu["official_cpu"], cpu["lamp_pl_cpu"])
        cells += [f"{cpu['official_cpu']:.1f}", f"{cpu['lamp_pl_cpu']:.1f}", f"{ratio:.2f}x"]
    else:
        cells += ["", "", ""]
    return "| " + " | ".join([*cells, agree]) + " |"


def end_to_end(stages: dict) -> tuple[float, float, dict]:
    """Ranking (contriever, time-based) + training + evaluation, each side: wall and CPU (the
    training and evaluation data are their own, larger set: the sum of the stages as timed)."""
    parts = [stages["ranking"]["contriever, time-based"], stages["training"], stages["evaluation"]]
    cpu = {key: sum(p[key] for p in parts) for key in ("official_cpu", "lamp_pl_cpu")}
    return sum(p["official_s"] for p in parts), sum(p["lamp_pl_s"] for p in parts), cpu


def task_table(task: str, stages: dict, args: argparse.Namespace) -> list[str]:
    """The markdown table of one task."""
    lines = [
        f"\n### {task}\n",
        "| stage | official | lamp_pl | speed-up | official CPU s | lamp_pl CPU s | CPU ratio | agreement |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, stage in stages["ranking"].items():
        lines.append(_row(f"ranking ({name}), s", stage["official_s"], stage["lamp_pl_s"], stage["agree"], cpu=stage))
    if "training" not in stages:  # --ranking-only
        return lines
    train, ev = stages["training"], stages["evaluation"]
    best = train["best_dev"]
    shown = {side: "n/a" if value is None else f"{float(value):.3f}" for side, value in best.items()}
    diverge = f"training diverges numerically: best dev metric official {shown['official']}, lamp_pl {shown['lamp_pl']}"
    if train.get("majority") is not None:
        diverge += f" (one answer for every question at best: {train['majority']:.3f})"
    name = "training (merge + train_llm.py / fit), s"
    lines.append(_row(name, train["official_s"], train["lamp_pl_s"], train["agree"], cpu=train))
    per_sample = f"{train['samples']} samples ({args.epochs} epochs); {diverge}"
    official, ours = train["official_per_sample_ms"], train["lamp_pl_per_sample_ms"]
    lines.append(_row("training per sample, ms", official, ours, per_sample, "{:.2f}"))
    name = "evaluation (test split, same checkpoint), s"
    lines.append(_row(name, ev["official_s"], ev["lamp_pl_s"], ev["agree"], cpu=ev))
    official, ours, cpu = end_to_end(stages)
    lines.append(_row("end to end (time-based, contriever), s", official, ours, "", cpu=cpu))
    return lines


def _judged(stage: dict, target: float, strict: bool = False) -> str:
    """Wall speed-up against the target, with the CPU-time ratio beside it (the figure to trust
    when the machine is busy)."""
    wall = _met(_ratio(stage["official_s"], stage["lamp_pl_s"]), target, strict)
    return f"{wall}, CPU {_met(_ratio(stage['official_cpu'], stage['lamp_pl_cpu']), target, strict)}"


def targets(results: dict, args: argparse.Namespace) -> list[str]:
    """Each target of the issue, met or not, per task."""
    lines = ["\nTargets (speed-up = official / lamp_pl, by wall and by CPU seconds):"]
    for task, stages in results.items():
        ranks = [f"{name} {_judged(s, TARGETS['ranking'])}" for name, s in stages["ranking"].items() if "time" in name]
        lines.append(f"- {task}: ranking >= 3x on time-based data: {'; '.join(ranks) or 'not run'}")
        if "training" not in stages:  # --ranking-only
            continue
        train = stages["training"]
        per_sample = _ratio(train["official_per_sample_ms"], train["lamp_pl_per_sample_ms"])
        official, ours, cpu = end_to_end(stages)
        whole = {"official_s": official, "lamp_pl_s": ours, **cpu}
        lines.append(f"- {task}: training no slower per sample: {_met(per_sample, TARGETS['training'])}")
        lines.append(f"- {task}: evaluation >= 1.5x: {_judged(stages['evaluation'], TARGETS['evaluation'])}")
        lines.append(f"- {task}: end to end faster: {_judged(whole, TARGETS['end to end'], strict=True)}")
    return lines


def replacements(records: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for record in records:
        for fix in record.get("fixes", []):
            seen[f"source line in memory: {fix['from'].strip()!r} -> {fix['to'].strip()!r}"] = None
        for patch in record.get("patches", []):
            seen[patch] = None
    lines = ["\nRun-time replacements in the official scripts (no file of the checkout is changed):"]
    return lines + [f"- {line}" for line in seen]


def report(results: dict, machine: dict[str, Any], records: list[dict], args: argparse.Namespace) -> str:
    """The whole printed report: machine, settings, one table per task, targets, replacements."""
    # The 1-minute load average decays slowly: right after another process ends it still reads
    # about 1, so only more than that (or more than the CPUs at the end) says other work ran.
    busy = machine["load_start"] > 1.5 or machine["load_end"] > (machine["cpus"] or 1) + 0.5
    lines = [
        f"\nmachine: {machine['cpus']} CPUs, load average {machine['load_start']:.1f} at start, "
        f"{machine['load_end']:.1f} at end{' (busy: other work was running)' if busy else ''}; "
        f"threads {args.threads or 'torch default'}; bench took {machine['bench_s'] / 60:.1f} min of wall, "
        f"{machine['bench_cpu_s'] / 60:.1f} min of its subprocesses' CPU",
        f"settings: k {args.k}, max_length {args.max_length}, generation_max_length {args.gen_max_length} "
        f"(lamp_pl max_new_tokens {args.gen_max_length - 1}), batch {args.batch_size}, beams {args.beams}, "
        f"lr {args.lr}; profiles {args.profile[0]}-{args.profile[1]} items; ranking: time-based {args.users} users x "
        f"{args.questions} questions per split, user-based {3 * args.users * args.questions} users; training and "
        f"evaluation: time-based {args.learn_users} users x {args.learn_questions} questions per split (dev: the first "
        f"{args.learn_dev}), {args.epochs} epochs, ranked by lamp_pl's BM25 for both sides",
        "ranking: `lamp-pl index --prompts false` (ranks only, as rank_profiles.py; fit and test tokenize the "
        "prompts, as train_llm.py and evaluate_llm.py do); training per sample: the epochs' training batches only "
        "(official: the Trainer's epoch begin to end; lamp_pl: epoch start to validation start), without validation "
        "and checkpoint writes",
    ]
    for task, stages in results.items():
        lines += task_table(task, stages, args)
    lines += targets(results, args)
    lines += replacements(records)
    return "\n".join(lines)


def _span(values: list[float], unit: str) -> str:
    """`low-high` of several runs' figures (one figure when they agree to the unit shown)."""
    low, high = unit.format(min(values)), unit.format(max(values))
    return low if low == high else f"{low}-{high}"


def combined(summaries: list[dict]) -> str:
    """One table per task over several runs' `summary.json`: each figure as the range of the runs.

    The speed-up is the range of the runs' own ratios (each run's official over its lamp_pl), not
    a ratio of the ranges.
    """
    lines = [
        f"{len(summaries)} runs; load average at start {_span([s['machine']['load_start'] for s in summaries], '{:.1f}')}"
    ]
    for task in summaries[0]["tasks"]:
        runs = [s["tasks"][task] for s in summaries]
        lines += [
            f"\n### {task}\n",
            "| stage | official | lamp_pl | speed-up | CPU ratio |",
            "|---|---:|---:|---:|---:|",
        ]
        rows: dict[str, list[dict]] = {
            f"ranking ({name}), s": [r["ranking"][name] for r in runs] for name in runs[0]["ranking"]
        }
        rows["training (merge + train_llm.py / fit), s"] = [r["training"] for r in runs]
        rows["evaluation (test split, same checkpoint), s"] = [r["evaluation"] for r in runs]
        for name, stages in rows.items():
            walls = [_ratio(s["official_s"], s["lamp_pl_s"]) for s in stages]
            cpus = [_ratio(s["official_cpu"], s["lamp_pl_cpu"]) for s in stages]
            lines.append(
                f"| {name} | {_span([s['official_s'] for s in stages], '{:.1f}')} | "
                f"{_span([s['lamp_pl_s'] for s in stages], '{:.1f}')} | {_span(walls, '{:.2f}')}x | {_span(cpus, '{:.2f}')}x |"
            )
        trains = [r["training"] for r in runs]
        official = [t["official_per_sample_ms"] for t in trains]
        ours = [t["lamp_pl_per_sample_ms"] for t in trains]
        ratios = [_ratio(o, m) for o, m in zip(official, ours)]
        lines.append(
            f"| training per sample, ms | {_span(official, '{:.2f}')} | {_span(ours, '{:.2f}')} | {_span(ratios, '{:.2f}')}x | |"
        )
        ends = [end_to_end(r) for r in runs]
        walls = [_ratio(o, m) for o, m, _ in ends]
        cpus = [_ratio(c["official_cpu"], c["lamp_pl_cpu"]) for _, _, c in ends]
        lines.append(
            f"| end to end (contriever), s | {_span([o for o, _, _ in ends], '{:.1f}')} | "
            f"{_span([m for _, m, _ in ends], '{:.1f}')} | {_span(walls, '{:.2f}')}x | {_span(cpus, '{:.2f}')}x |"
        )
        spread = (max(ours) - min(ours)) / min(ours)
        best = [t["best_dev"] for t in trains]
        lines.append(
            f"\nlamp_pl's time per training sample moved by {spread:.1%} between runs "
            f"(official: {(max(official) - min(official)) / min(official):.1%}); best dev metric, official "
            f"{_span([float(b['official'] or 0) for b in best], '{:.3f}')}, lamp_pl {_span([float(b['lamp_pl'] or 0) for b in best], '{:.3f}')}"
            + (
                f"; one answer for every question at best: {trains[0]['majority']:.3f}"
                if trains[0].get("majority")
                else ""
            )
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print("python bench/vs_official_report.py RUN/summary.json [RUN/summary.json ...]: the runs' range table")
        raise SystemExit(0)
    print(combined([json.loads(Path(p).read_text()) for p in sys.argv[1:]]))
