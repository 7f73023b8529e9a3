"""LaMP-QA read with `datasets` from a local folder in the published schema (``id, question,
narrative, rubric_aspects[{aspect, reason, evidence}], profile[{id, text}]``, reference answers in
train only), trained and predicted end to end, and judged per aspect by an OpenAI-compatible judge:
a loopback HTTP server started here that speaks the chat-completions wire format and scores an
aspect 2 when the answer names the aspect's word, else 0."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from longform_helpers import bm25_module, published, save_broken, tiny_t5_on, tiny_trainer

from lamp_pl.cli.evaluate import evaluate
from lamp_pl.data.hub import DatasetSource, materialize
from lamp_pl.data.lamp import LaMPDataError, load_split
from lamp_pl.demo.longform import write_lamp_qa
from lamp_pl.evaluation.judge import JUDGE_SYSTEM, parse_score, prompts_digest
from lamp_pl.lightning.module import LaMPModel
from lamp_pl.tasks import get_task

TASK = "LaMP_QA_Art_and_Entertainment"
CATEGORY = "Art_and_Entertainment"


@pytest.fixture(scope="module")
def hub_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lampqa")
    write_lamp_qa(root, CATEGORY, users=20, profile_size=4)
    return root


class Judge(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions``: 2 when the answer holds the aspect's word, else 0; the first
    greedy request about a ``flaky`` word gets prose without a score (the judge must ask again)."""

    requests: list[dict] = []
    flaky: set[str] = set()

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        user = body["messages"][-1]["content"]
        answer = user.split("answer: ", 1)[1].split("\naspect:", 1)[0]
        word = re.search(r"title: covers (\S+)", user).group(1)
        if word in self.flaky and body.get("temperature", 0) == 0:
            text = "I would say the answer is fine."
        else:
            text = '```json\n{"match_score": ' + str(2 if word in answer.split() else 0) + "}\n```"
        reply = {
            "id": "judge-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def judge_server():
    Judge.requests, Judge.flaky = [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Judge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_questions_profiles_and_judge_fields(hub_copy: Path, tmp_path: Path) -> None:
    task = get_task(TASK)
    folder = materialize(DatasetSource(str(hub_copy)), task, tmp_path)
    copy = published(hub_copy, CATEGORY)
    train = load_split(folder, task, "train")
    assert [q.output for q in train] == copy["train"]["expected_output"]
    dev = load_split(folder, task, "dev")  # validation: no reference answers, judged instead
    assert all(q.output is None for q in dev) and not (folder / "dev_outputs.json").exists()
    assert [q.input for q in dev] == copy["validation"]["question"]
    assert dev[0].profile[0]["text"] == copy["validation"][0]["profile"][0]["text"]
    judged = json.loads((folder / "dev_judge.json").read_text())
    assert judged[0]["rubric_aspects"] == copy["validation"][0]["rubric_aspects"]


def test_a_broken_aspect_is_named(hub_copy: Path, tmp_path: Path) -> None:
    records = published(hub_copy, CATEGORY)["validation"].to_list()
    records[1]["rubric_aspects"][0]["reason"] = None
    broken = save_broken(hub_copy, CATEGORY, "validation", records, tmp_path / "broken")
    with pytest.raises(
        LaMPDataError, match=r"split validation, record 1 \(id 'q13'\), field 'rubric_aspects\[0\]\.reason'"
    ):
        materialize(DatasetSource(str(broken)), get_task(TASK), tmp_path / "cache")


def test_judge_answers_are_parsed_as_the_benchmark_reads_them() -> None:
    assert parse_score('```json\n{"match_score": 2}\n```') == 2
    assert parse_score('{"match_score": "1"}') == 1
    assert parse_score('here: "match_score": 1, as said') == 1
    assert parse_score('{"match_score": 3}') is None and parse_score("no idea") is None


def test_fit_predict_and_judge_end_to_end(hub_copy: Path, tmp_path: Path, judge_server: str) -> None:
    copy = published(hub_copy, CATEGORY)
    corpus = [r["question"] + " " + r["expected_output"] for r in copy["train"]]
    model_dir = tiny_t5_on(corpus, tmp_path / "t5")
    # The published validation split has no reference answers: validate on train, predict dev.
    data = bm25_module(hub_copy, tmp_path, TASK, model_dir, val_split="train", predict_split="dev")
    model = LaMPModel(str(model_dir), task=TASK, tokenizer=str(model_dir), num_beams=1, max_new_tokens=8)
    trainer = tiny_trainer(tmp_path, limit_val_batches=1)
    trainer.fit(model, datamodule=data)
    assert "are questions this user asked before" in data.prompts("dev")[0]
    trainer.predict(model, datamodule=data)
    generated = tmp_path / "runs" / "predictions_dev.json"
    assert len(json.loads(generated.read_text())["golds"]) == len(copy["validation"])

    # Known answers: each names the first aspect's word; every other one the second's too.
    records = copy["validation"].to_list()
    answers, want = [], []
    for n, record in enumerate(records):
        words = [a["aspect"].split()[-1] for a in record["rubric_aspects"]]
        answers.append({"id": record["id"], "output": f"think about {' and '.join(words if n % 2 else words[:1])}"})
        want.append(1.0 if n % 2 else 0.5)
    preds = tmp_path / "answers.json"
    preds.write_text(json.dumps({"task": TASK, "golds": answers}))
    Judge.flaky = {records[0]["rubric_aspects"][0]["aspect"].split()[-1]}
    args = dict(
        judge_model="judge-model", judge_base_url=judge_server, dataset=str(hub_copy), cache_dir=tmp_path / "cache"
    )
    summary = evaluate(TASK, preds=preds, **args)
    assert summary["score"] == pytest.approx(sum(want) / len(want)) and summary["unparsed"] == 0
    metrics = json.loads(Path(summary["metrics_file"]).read_text())
    assert metrics["judge"]["model"] == "judge-model" and metrics["judge"]["prompts"]["system"] == JUDGE_SYSTEM
    assert metrics["judge"]["prompts_sha256"] == prompts_digest()
    assert [q["score"] for q in metrics["per_question"]] == pytest.approx(want)
    asked = len(Judge.requests)
    assert asked == 2 * len(records) + 1  # one aspect asked again, at temperature 0.1
    assert Judge.requests[0]["messages"][0] == {"role": "system", "content": JUDGE_SYSTEM}
    assert evaluate(TASK, preds=preds, **args)["score"] == summary["score"]
    assert len(Judge.requests) == asked  # resumed from the judge's response cache: nothing re-sent
    judged = evaluate(TASK, preds=generated, **args | {"out": tmp_path / "generated_judged.json"})
    assert judged["questions"] == len(records) and 0 <= judged["score"] <= 1
