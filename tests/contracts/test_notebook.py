"""The retrieval-inspection notebook runs top to bottom on a small demo-like config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "inspect_retrieval.ipynb"


def _outputs(nb) -> tuple[str, str, int]:
    """All text (streams and plain reprs), all HTML, and the number of images of an executed notebook."""
    texts, htmls, images = [], [], 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                texts.append(output.text)
            data = output.get("data", {})
            texts.append(data.get("text/plain", ""))
            htmls.append(data.get("text/html", ""))
            images += "image/png" in data
    return "\n".join(texts), "\n".join(htmls), images


def test_notebook_is_saved_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), "save the notebook without outputs"
    assert "parameters" in code[0].metadata.get("tags", [])
    for name in ("CONFIG", "OVERRIDES", "SPLIT", "QUESTION_INDEX", "K"):
        assert f"{name} =" in code[0].source


def test_notebook_runs_on_small_demo(tmp_path, tiny_bert, tiny_t5, monkeypatch):
    overrides = [
        "--data.data_dir",
        str(tmp_path / "data"),
        "--data.cache_dir",
        str(tmp_path / "cache"),
        "--data.tokenizer",
        str(tiny_t5),
        "--data.synthetic.users",
        "30",
        "--data.synthetic.questions_per_user",
        "2",
        "--data.retrieval.encoder",
        str(tiny_bert),
        # the demo's own 96-token budget: the prompt section's default budget must still show K=5 items
        "--data.max_input_length",
        "96",
    ]
    # The kernel inherits this environment.
    monkeypatch.setenv("LAMP_PL_NOTEBOOK_CONFIG", "demo")
    monkeypatch.setenv("LAMP_PL_NOTEBOOK_OVERRIDES", json.dumps(overrides))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()  # raises CellExecutionError on any failing cell

    text, html, images = _outputs(nb)
    from lamp_pl.data.lamp import load_split

    question = load_split(tmp_path / "data", "LaMP_2", "dev")[0]
    assert f"question id: {question.id}" in text
    assert f"gold:        {question.output}" in text
    assert question.input in text
    # the profile table and the per-retriever table
    assert "retrieval text</th>" in html and "score</th>" in html
    assert "retriever</th>" in html
    for name in ("contriever", "bm25", "recency", "random", "other_users_random"):
        assert f">{name}<" in html
    assert "other user" in html and "this user" in html
    # prompts under every order and ablation, with items rendered
    for order in ("start", "end", "middle", "random"):
        for ablation in ("both", "only_input", "only_output", "decouple"):
            assert f"=== order={order} ablation={ablation}: " in text
    assert 'the tag for the movie: "' in text and 'a movie tagged "' in text
    assert "no room for the items" not in text
    # label agreement rates of a classification task, and the plots
    assert "other_users_random: top-1 label == gold for" in text
    assert images >= 4
    # the attribution section: summary by position and one question's shaded prompt
    assert "mean leave-one-out delta</th>" in html and "rgba(" in html
    assert "attribution of question" in text
    assert (tmp_path / "cache").is_dir() and not (ROOT / "notebooks" / "demo_data").exists()
