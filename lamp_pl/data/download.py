"""Download the public LaMP benchmark files into the layout the data layer reads.

Files land in ``<dest>/<task>/<split>/<split>_questions.json`` (plus
``<split>_outputs.json`` for train and dev). Transfers are resumable and atomic:
bytes stream into ``<file>.part`` and are moved to the final name only once the
size matches the server's and the file is a LaMP questions or outputs file. A resume only
appends bytes of the same remote version (``If-Range``); concurrent downloads of one file wait
for each other (a lock beside it).
"""

from __future__ import annotations

import http.client
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock
from tqdm import tqdm

from lamp_pl.errors import LaMPError

DEFAULT_BASE_URL = "https://ciir.cs.umass.edu/downloads/LaMP"
TASKS = ("LaMP_1", "LaMP_2", "LaMP_2N", "LaMP_3", "LaMP_4", "LaMP_5", "LaMP_7")
SPLITS = ("train", "dev", "test")
# Where each task lives on the server, relative to the (time-based) base URL:
# the current movie-tagging LaMP-2 replaced the news version under ``new/``.
_REMOTE_DIRS = {t: t for t in TASKS} | {"LaMP_2": "LaMP_2/new", "LaMP_2N": "LaMP_2"}
_CHUNK = 1 << 16
RETRY_DELAY = 1.0  # seconds, multiplied by the attempt number; tests set it to 0
AVOCADO_MESSAGE = (
    "LaMP_6 is not publicly downloadable: it is built from the Avocado Research Email "
    "Collection, which is licensed from the LDC. Obtain Avocado from the LDC, create the "
    "files with the official LaMP scripts (github.com/LaMP-Benchmark/LaMP, data/avocado), "
    "then point --data-dir at them in the LaMP layout (<dir>/LaMP_6/<split>/<split>_questions.json)."
)

LONGLAMP_EMAIL_MESSAGE = (
    "LongLaMP's email completion is not public: like LaMP_6 it is built from the Avocado corpus (LDC); "
    "the LongLaMP authors publish only the sample ids and their build script (github.com/LongLaMP-benchmark/"
    "LongLaMP-Benchmark, data/avocado). The public LongLaMP tasks are LongLaMP_abstract_generation_*, "
    "LongLaMP_product_review_* and LongLaMP_topic_writing_* (user / temporal)."
)


class DownloadError(LaMPError, RuntimeError):
    """A download failed in a way retrying will not fix; the message is user-facing."""


class _Transient(Exception):
    """A transfer broke off half way; the caller retries, resuming from the .part file."""


def remote_url(task: str, split: str, filename: str, time_based: bool = False, base_url: str = DEFAULT_BASE_URL) -> str:
    """Return the official URL of one LaMP file.

    Args:
        task: lamp_pl task name, e.g. ``"LaMP_2"`` or ``"LaMP_2N"``.
        split: ``"train"``, ``"dev"`` or ``"test"``.
        filename: e.g. ``"train_questions.json"``.
        time_based: use the time-based split (under ``/time/``).
        base_url: server root, without trailing ``/LaMP_n``.
    """
    root = base_url.rstrip("/") + ("/time" if time_based else "")
    return f"{root}/{_REMOTE_DIRS[task]}/{split}/{filename}"


def _check_task(task: str) -> None:
    if task == "LaMP_6":
        raise DownloadError(AVOCADO_MESSAGE)
    if task.startswith("LongLaMP") and "email" in task:
        raise DownloadError(LONGLAMP_EMAIL_MESSAGE)
    if task not in TASKS:
        from lamp_pl.tasks import benchmark_task_names

        raise DownloadError(f"unknown task {task!r}; valid tasks: {', '.join((*TASKS, *benchmark_task_names()))}")


def _range_total(headers: http.client.HTTPMessage) -> int | None:
    match = re.search(r"/(\d+)\s*$", headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _validator_path(part: Path) -> Path:
    """Beside a ``.part`` file: the ETag (or Last-Modified) of the remote version its bytes are from."""
    return part.with_name(part.name + ".validator")


def _remote_version(headers: http.client.HTTPMessage) -> str | None:
    return headers.get("ETag") or headers.get("Last-Modified")


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Make one attempt to complete ``part``; raise ``_Transient`` if it broke off.

    A resume asks for the rest only of the version the ``.part`` holds (``If-Range``): a server
    whose file changed answers with the whole new file, which replaces the old bytes. Bytes of
    an unknown version (no ETag or Last-Modified was given) are never resumed.
    """
    version_file = _validator_path(part)
    have = part.stat().st_size if part.exists() else 0
    version = version_file.read_text() if have and version_file.is_file() else None
    if have and not version:
        have = 0  # nothing to tell whether the remote file is still the same one: start over
    headers = {"Range": f"bytes={have}-", "If-Range": version} if have and version else {}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have and _range_total(err.headers) == have:
            return  # the .part already holds the whole file
        if err.code == 416:  # .part is larger than the remote file: stale, start over
            part.unlink()
            raise _Transient(f"stale partial file for {url}") from err
        if err.code >= 500:
            raise _Transient(f"HTTP {err.code} for {url}") from err
        raise DownloadError(f"HTTP {err.code} {err.reason} for {url}") from err
    with resp:
        remote = _remote_version(resp.headers)
        if resp.status == 206 and remote is not None and remote != version:
            # The server ignored If-Range and sent bytes of another version: never splice them.
            part.unlink()
            raise _Transient(f"{url} changed during the download (now {remote}, was {version})")
        # A 200 to a ranged request means the server ignored the range or the file changed: start over.
        offset = have if resp.status == 206 else 0
        if not offset:
            version_file.unlink(missing_ok=True)
            if remote:
                version_file.write_text(remote)
        length = resp.headers.get("Content-Length")
        expected = offset + int(length) if length is not None else None
        with (
            open(part, "ab" if offset else "wb") as out,
            tqdm(
                total=expected,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    # http.client returns b"" rather than raising when the peer closes early.
    if expected is not None and part.stat().st_size < expected:
        raise _Transient(f"connection closed early for {url}")


def check_lamp_file(path: Path, name: str) -> None:
    """Raise `DownloadError` unless `path` holds a LaMP questions or outputs file (by `name`):
    an HTML or JSON error page, a truncated body or a splice of two versions never passes."""
    from lamp_pl.data.lamp import LaMPDataError, read_json

    try:
        document = read_json(path)  # JSON, or JSON Lines (LaMP-3's train questions)
    except LaMPDataError as error:
        raise DownloadError(f"the server did not return valid JSON for {name} ({error})") from None
    if "_outputs" in name:
        golds = document.get("golds") if isinstance(document, dict) else None
        good = (
            isinstance(golds, list)
            and bool(golds)
            and all(isinstance(g, dict) and "id" in g and "output" in g for g in golds)
        )
        shape = 'an object {"task": ..., "golds": [{"id", "output"}, ...]}'
    else:
        document = [document] if isinstance(document, dict) and "input" in document else document
        good = (
            isinstance(document, list)
            and bool(document)
            and all(
                isinstance(q, dict) and "id" in q and "input" in q and isinstance(q.get("profile"), list)
                for q in document
            )
        )
        shape = 'a list of {"id", "input", "profile": [...]} questions'
    if not good:
        raise DownloadError(f"the server's {name} is valid JSON but not a LaMP file (expected {shape})")


def download_file(url: str, path: Path, retries: int = 3, timeout: float = 60.0, progress: bool = True) -> Path:
    """Download ``url`` to ``path`` atomically, resuming from ``path.part`` if present.

    Args:
        url: file to fetch.
        path: final destination; it only appears once the file is complete and valid.
        retries: extra attempts after a dropped connection or server error.
        timeout: socket timeout in seconds.
        progress: show a tqdm byte progress bar.

    Returns:
        ``path``.

    Raises:
        DownloadError: on 4xx errors, an unreachable host, invalid JSON, a file that is
            not a LaMP file, or when every attempt broke off (the ``.part`` file is kept
            for a later resume).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    last: Exception | None = None
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, timeout, progress)
            break
        except urllib.error.URLError as err:  # HTTPError is handled in _fetch_once
            if isinstance(err.reason, (TimeoutError, ConnectionResetError)):
                last = err
            else:
                raise DownloadError(
                    f"cannot reach {url} ({err.reason}); this machine seems to be offline. "
                    f"Download the files on a connected machine and copy them into {path.parent}/"
                ) from err
        except (_Transient, http.client.IncompleteRead, ConnectionResetError, TimeoutError) as err:
            last = err
        if attempt < retries:
            time.sleep(RETRY_DELAY * (attempt + 1))
    else:
        raise DownloadError(
            f"download of {url} failed after {retries + 1} attempts ({last!r}); rerun to resume from {part}"
        ) from last
    if path.suffix in (".json", ".jsonl"):
        try:
            check_lamp_file(part, path.name)
        except DownloadError as err:
            # Likely an HTML error page, an error JSON or a truncated body: never let it land.
            part.unlink()
            _validator_path(part).unlink(missing_ok=True)
            raise DownloadError(f"{url}: {err}") from None
    os.replace(part, path)
    _validator_path(part).unlink(missing_ok=True)
    return path


def download_lamp(
    task: str,
    dest: str | Path,
    splits: Sequence[str] = SPLITS,
    time_based: bool = False,
    base_url: str = DEFAULT_BASE_URL,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
    force: bool = False,
) -> list[Path]:
    """Download one LaMP task into ``<dest>/<task>/<split>/``.

    Args:
        task: one of ``TASKS`` (``LaMP_6`` raises with instructions to build it locally).
        dest: root data directory.
        splits: any of ``"train"``, ``"dev"``, ``"test"`` (test has no outputs file).
        time_based: fetch the time-based instead of the user-based split.
        base_url: server root; override for mirrors or tests.
        progress: show per-file progress bars.
        retries: extra attempts per file after a dropped connection.
        timeout: socket timeout in seconds.
        force: re-download files that already exist.

    Returns:
        Paths of the requested files, whether downloaded now or already present.

    Raises:
        DownloadError: unknown task or split, LaMP_6, network or HTTP failure.
    """
    from lamp_pl.tasks.longform import source_of

    if source_of(task) is not None:  # LongLaMP / LaMP-QA: a Hugging Face dataset, saved as a local copy
        from lamp_pl.data.hub import save_copy
        from lamp_pl.tasks import get_task

        return [save_copy(get_task(task), dest)]
    _check_task(task)
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise DownloadError(f"unknown split(s) {bad}; valid splits: {', '.join(SPLITS)}")
    paths = []
    for split in dict.fromkeys(splits):
        kinds = ("questions",) if split == "test" else ("questions", "outputs")
        for kind in kinds:
            name = f"{split}_{kind}.json"
            path = Path(dest) / task / split / name
            locks = Path(dest) / ".locks"
            locks.mkdir(parents=True, exist_ok=True)
            # One downloader per file at a time: others wait, then find it complete.
            with FileLock(locks / f"{task}-{split}-{name}.lock"):
                if force or not path.exists():  # final names only ever hold complete files
                    download_file(
                        remote_url(task, split, name, time_based, base_url),
                        path,
                        retries=retries,
                        timeout=timeout,
                        progress=progress,
                    )
            paths.append(path)
    return paths
