"""`lamp-pl download`, `check-data`, `synthetic` and `convert`: the data folder's commands.

Typed functions whose docstrings are their `--help` (see `lamp_pl.cli.tree`). Each imports only what it
uses, so none of them loads Lightning or a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Split = Literal["train", "dev", "test"]
Protocol = Literal["known_users", "held_out_users"]


def check_data(task: str, data_dir: Path, split: list[Split] | None = None) -> dict:
    """Validate a LaMP data folder and print a JSON summary.

    Args:
        task: LaMP task name (`LaMP_1` .. `LaMP_7`, `LaMP_2N`) or a custom task's .json spec.
        data_dir: Folder with `<task>/<split>_questions.json` (or `<task>/<split>/...`).
        split: Check only these splits (default: every split present).
    """
    from lamp_pl.data.check import check_data as check

    return check(task, data_dir, list(split) if split else None)


def download(
    task: str,
    dest: Path,
    split: list[Split] | None = None,
    time_based: bool = False,
    base_url: str | None = None,
    force: bool = False,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
) -> list[Path]:
    """Download the official files of one LaMP task.

    Resumable and atomic: a file appears under its final name only when complete and valid JSON.

    Args:
        task: One of LaMP_1, LaMP_2, LaMP_2N, LaMP_3, LaMP_4, LaMP_5, LaMP_7 (LaMP_6 explains how to build it);
            or a LongLaMP / LaMP-QA task (e.g. LongLaMP_abstract_generation_user, LaMP_QA_Society_and_Culture):
            its Hugging Face dataset (LongLaMP/LongLaMP, alireza7/LaMP-QA) is saved with `datasets` to
            `<dest>/<config>`, the folder to name as `data.source.dataset` (offline runs read it there).
        dest: Root data directory; files go to `<dest>/<task>/<split>/` (`<dest>/<config>` for a dataset).
        split: Splits to fetch (default: all).
        time_based: Fetch the time-based instead of the user-based split.
        base_url: Server root (default: the official one); for mirrors and tests.
        force: Re-download files that already exist.
        retries: Extra attempts per file after a dropped connection.
        timeout: Socket timeout in seconds.
        progress: Show per-file progress bars.
    """
    from lamp_pl.data import download as dl

    return dl.download_lamp(
        task, dest, split or dl.SPLITS, time_based, base_url or dl.DEFAULT_BASE_URL, progress, retries, timeout, force
    )


def synthetic(
    dest: Path,
    task: str = "LaMP_2",
    users: int = 60,
    profile_size: tuple[int, int] = (8, 24),
    questions_per_user: int = 1,
    time_based: bool = False,
    seed: int = 0,
) -> Path:
    """Write a synthetic LaMP task folder (offline demo and tests).

    Args:
        dest: Root data directory; the task folder is `<dest>/<task>`.
        task: Which LaMP task's shape to imitate.
        users: Number of users.
        profile_size: Smallest and largest profile size.
        questions_per_user: Questions per user.
        time_based: Time-based split (each user's questions in every split).
        seed: Random seed; equal arguments give byte-identical files.
    """
    from lamp_pl.data.synthetic import write_synthetic

    return write_synthetic(
        dest,
        task=task,
        users=users,
        profile_size=tuple(profile_size),
        questions_per_user=questions_per_user,
        time_based=time_based,
        seed=seed,
    )


def convert(
    dataset: Literal["goemotions", "unhealthy"],
    /,
    raw: list[Path],
    out: Path,
    split: Protocol = "known_users",
    min_annotations: int = 10,
    max_profile: int = 100,
    seed: int = 0,
    label_list: bool = True,
) -> dict:
    """Convert GoEmotions or Unhealthy Conversations raw files to per-annotator LaMP tasks.

    `goemotions` writes the multi-label `GoEmotions` task; `unhealthy` writes `Unhealthy_healthy`
    (binary) and `Unhealthy_attributes`. Each task gets `<out>/<task>/<split>_*.json` and its
    spec `<out>/<task>.json`.

    Args:
        dataset: Which raw dataset the files are (`goemotions` or `unhealthy`).
        raw: The raw CSV files (GoEmotions: `goemotions_1..3.csv`; Unhealthy: `unhealthy_full.csv`).
        out: Output root of the tasks and their specs.
        split: `known_users` (every annotator in every split) or `held_out_users`.
        min_annotations: Annotators with fewer (clear) annotations are dropped.
        max_profile: Most profile items per question.
        seed: Seeds the splits and the profile samples.
        label_list: Name the label set in each question's input (`--no-label-list`: shorter prompts).
    """
    from lamp_pl.data import annotators

    function = annotators.convert_goemotions if dataset == "goemotions" else annotators.convert_unhealthy
    summary = function(raw, out, split, min_annotations, seed, max_profile, label_list)
    summary["dropped_annotator_ids"] = summary["dropped_annotator_ids"][:20]
    return summary
