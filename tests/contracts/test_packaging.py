"""The package outside a clone: shipped configs by name, `lamp-pl configs`, extras named when
missing, what the base install requires, and the friction of a first run (issue 29)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from helpers import base_args
from lamp_pl.cli import main
from lamp_pl.shipped import find_shipped, resolve_config, shipped_names, shipped_root

ROOT = Path(__file__).resolve().parents[2]


def run_child(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`python -c code` with this checkout importable, offline unless `env` says otherwise."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **env}
    environment = {k: v for k, v in environment.items() if v != ""}  # "" unsets
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


# --- shipped configs by name ---------------------------------------------------------------------


def test_the_configs_are_package_data_found_without_the_source_tree():
    root = shipped_root()
    assert root.is_dir() and root.parent.name == "lamp_pl" and (root / "demo.yaml").is_file()
    assert not (ROOT / "configs").exists(), "the configs live in the package only"
    names = shipped_names()
    assert {"demo", "task/LaMP_4", "retriever/contriever", "recipes/lamp_main_table", "LaMP_2/ropg_kd"} <= set(names)
    # no module finds files relative to its own source file
    offenders = [p for p in (ROOT / "lamp_pl").rglob("*.py") if "__file__" in p.read_text(encoding="utf-8")]
    assert not offenders, offenders


@pytest.mark.parametrize(
    "spelling",
    ["task/LaMP_4", "task/LaMP_4.yaml", "configs/task/LaMP_4.yaml", str(shipped_root() / "task/LaMP_4.yaml")],
)
def test_a_name_with_or_without_extension_resolves_to_the_shipped_file(spelling, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Path(resolve_config(spelling)) == shipped_root() / "task" / "LaMP_4.yaml"


def test_a_file_that_exists_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("demo").write_text("data: {k: 3}\n")
    assert resolve_config("demo") == "demo"
    assert resolve_config("{data: {k: 3}}") == "{data: {k: 3}}", "inline YAML is left to jsonargparse"


def test_fit_reads_a_config_by_name_and_keeps_its_paths_relative_to_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", "demo", "--config", "demo_k0", "--print_config"])
    assert done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["k"] == 0 and printed["data"]["task"] == "LaMP_2"
    # demo_data and the cache are the user's folders, not the package's
    assert printed["data"]["data_dir"] == "demo_data" and printed["data"]["cache_dir"] == "indexes"
    assert printed["data"]["tokenizer"] == "demo_data/tokenizer"


@pytest.mark.parametrize(
    "argv",
    [
        ["fit", "--config", "no_such_config"],
        ["index", "--config", "task/LaMP_99"],
        ["grid", "--config", "nope", "--dry_run"],
        ["grid", "--recipe", "no_such_recipe", "--dry_run"],
        ["configs", "nope"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_name_that_matches_nothing_is_one_line_listing_the_names(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(argv)
    line = one_error_line(capsys.readouterr().err)
    assert done.value.code == 2 and "no shipped config of that name" in line
    assert ("lamp_main_table" in line) if "--recipe" in argv else ("task/LaMP_4" in line and "demo" in line)


def test_typed_commands_and_recipes_take_names(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    from lamp_pl.cli import COMMANDS, load
    from lamp_pl.cli.tree import parse_command

    _, args = parse_command("index", load(COMMANDS["index"]), ["--config", "task/LaMP_4", "--config", "retriever/bm25"])
    assert args.data.task == "LaMP_4" and args.data.retrieval.retriever == "bm25"
    assert main(["grid", "--recipe", "lamp_main_table", "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert "--config model/seq2seq" in out and "runs to do" in out


def test_configs_lists_and_prints_the_shipped_configs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["configs"]) == 0
    listed = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in listed if line and not line.startswith("(")]
    assert names == shipped_names()
    assert any(line.startswith("demo ") and "Offline demo" in line for line in listed)
    assert main(["configs", "demo"]) == 0
    assert capsys.readouterr().out == (shipped_root() / "demo.yaml").read_text()
    assert main(["configs", "recipes/lamp_main_table", "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(find_shipped("recipes/lamp_main_table"))


# --- extras ---------------------------------------------------------------------------------------


def _hidden(module: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run `lamp-pl argv` with `module` made unimportable, as if its extra were not installed."""
    code = f"import sys; sys.modules[{module!r}] = None; from lamp_pl.cli import main; sys.exit(main({argv!r}))"
    return run_child(code, cwd)


@pytest.mark.parametrize("module", ["sacrebleu", "nltk"])
def test_longform_metrics_without_the_extra_name_it(module, tmp_path):
    golds = {"task": "LongLaMP_product_review_user", "golds": [{"id": "1", "output": "a long review of the product"}]}
    (tmp_path / "g.json").write_text(json.dumps(golds))
    argv = ["evaluate", "--task", "LongLaMP_product_review_user", "--golds", "g.json", "--preds", "g.json"]
    done = _hidden(module, argv, tmp_path)
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and 'pip install "lamp-pl[longform]"' in line and module in line


def test_bm25s_without_the_extra_names_it(tiny_t5, data_root, tmp_path):
    argv = [
        "index",
        *base_args(tiny_t5, data_root, tmp_path / "cache", "LaMP_2"),
        "--data.retrieval.bm25_impl",
        "bm25s",
    ]
    done = _hidden("bm25s", argv, tmp_path)
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and 'pip install "lamp-pl[bm25s]"' in line and "bm25_impl: bm25s" in line


def test_the_base_install_requires_no_optional_package(tmp_path):
    """The wheel's METADATA: bm25s, nltk and sacrebleu only behind their extras; majors bounded."""
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = tmp_path.glob("lamp_pl-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "lamp_pl/configs/demo.yaml" in names and "lamp_pl/configs/recipes/lamp_main_table.yaml" in names
    assert "lamp_pl/configs/LaMP_2/ropg_kd.yml" in names and "lamp_pl/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    base = [r for r in requires if "extra ==" not in r]
    for optional in ("bm25s", "nltk", "sacrebleu", "openai", "submitit"):
        assert not [r for r in base if r.lower().startswith(optional)], f"{optional} in the base install"
    by_extra = {extra: [r for r in requires if f'extra == "{extra}"' in r] for extra in ("bm25s", "longform", "docs")}
    assert any(r.startswith("bm25s") for r in by_extra["bm25s"])
    assert {r.split(">")[0].split(";")[0].strip() for r in by_extra["longform"]} >= {"nltk", "sacrebleu"}
    assert any("<5" in r for r in base if r.startswith("jsonargparse")) and any(
        "<3" in r for r in base if r.startswith("lightning")
    )
    assert "Version: 0.2.0" in metadata and (
        "License-Expression: Apache-2.0" in metadata or "License: Apache-2.0" in metadata
    )
    assert "Project-URL: Source, https://github.com/lamp-pl/lamp_pl" in metadata


def test_metadata_files_exist_and_agree_on_the_version():
    import lamp_pl

    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["version"] == lamp_pl.__version__ == "0.2.0" and citation["license"] == "Apache-2.0"
    assert f"## [{lamp_pl.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


# --- friction of a first run ----------------------------------------------------------------------


def test_no_network_without_hf_hub_offline_is_one_line(tmp_path):
    """A hub name with no route to the hub: one line naming it and the offline setting, exit 2."""
    code = "import sys; from lamp_pl.cli import main; sys.exit(main(['index', '--config', 'task/LaMP_1']))"
    done = run_child(code, tmp_path, HF_HUB_OFFLINE="", TRANSFORMERS_OFFLINE="", HF_ENDPOINT="http://127.0.0.1:9")
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and "cannot reach the Hugging Face hub" in line and "HF_HUB_OFFLINE" in line


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`lamp-pl configs | head -1`: the reader left; no `error: Broken pipe`, exit status 0."""
    child = subprocess.Popen(
        [sys.executable, "-m", "lamp_pl.cli", "configs"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    child.stdout.close()  # before the child writes: its output meets a closed pipe
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0 and err == ""


def test_users_are_counted_as_users_not_questions(tmp_path, tiny_t5, capsys):
    """The demo's layout (several questions per user): `check-data` and `index` count 6 users."""
    from lamp_pl.data.synthetic import write_synthetic

    write_synthetic(tmp_path / "data", task="LaMP_2", users=6, questions_per_user=3, profile_size=(3, 5))
    assert main(["check-data", "--task", "LaMP_2", "--data_dir", str(tmp_path / "data")]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert sum(split["users"] for split in checked["splits"].values()) == 6
    args = base_args(tiny_t5, tmp_path / "data", tmp_path / "cache", "LaMP_2")
    assert main(["index", *args]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert report["users"] == 6 and report["questions"] == 18
