"""Whose beam search a difference in predictions is: plain transformers in each environment.

`bench/vs_official.py` compares `evaluate_llm.py`'s test predictions (transformers 4.27) with
`lamp-pl test`'s (transformers 5) on the same checkpoint. This script runs `generate` itself, with
no lamp_pl and no official code, on the official evaluation's own prompts (file order, with the
batch size, input truncation, beams and `max_length` of the run's lamp_pl config) in
both environments (transformers 5 with the attention the bench's lamp_pl side uses, eager), and
counts agreement three ways: official against plain 4.27, lamp_pl against plain 5, and plain 4.27
against plain 5. When the first two agree fully, a difference between official and lamp_pl is the
installed transformers' beam search, not either program. It also times the generation loop alone
in each environment (tokenize, generate, decode; the model loaded, no imports counted), the part of
an evaluation that neither program's own code changes.

    python bench/beam_versions.py runs/vs1 LaMP_4 --official-python ../venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def generate(
    checkpoint: str, record: str, out: str, beams: int, max_length: int, truncate: int, attn: str, batch: int
) -> None:
    """Plain `generate` over the recorded evaluation prompts; writes {version, predictions, seconds}."""
    import torch
    import transformers
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    # transformers before 4.36 has one T5 attention (eager) and no argument to choose it.
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    choice = {"attn_implementation": attn} if (major, minor) >= (4, 36) else {}
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint, **choice).eval()
    prompts = json.loads(Path(record).read_text())["prompts"]["eval_dataset"]
    ids, predictions = list(prompts), {}
    start = time.perf_counter()
    for at in range(0, len(ids), batch):
        chunk = ids[at : at + batch]
        texts = [prompts[i] for i in chunk]
        encoded = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=truncate)
        inputs = {k: v for k, v in encoded.items() if k != "token_type_ids"}
        with torch.no_grad():
            generated = model.generate(**inputs, num_beams=beams, max_length=max_length)
        for qid, text in zip(chunk, tokenizer.batch_decode(generated, skip_special_tokens=True)):
            predictions[qid] = text.strip()
    seconds = time.perf_counter() - start
    Path(out).write_text(
        json.dumps({"transformers": transformers.__version__, "predictions": predictions, "seconds": seconds})
    )


def agreement(a: dict[str, str], b: dict[str, str]) -> str:
    differ = [qid for qid in a if a[qid] != b.get(qid)]
    return f"{len(a) - len(differ)}/{len(a)} identical" + (f" (differ: {', '.join(differ[:9])})" if differ else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="a bench/vs_official.py --work folder")
    parser.add_argument("task", choices=["LaMP_2", "LaMP_4"])
    parser.add_argument("--official-python", required=True, help="Python of the official environment")
    # Unset, each comes from the run's lamp_pl config (the settings both sides evaluated with).
    parser.add_argument("--beams", type=int, help="num_beams")
    parser.add_argument("--max-length", type=int, help="generation_max_length (lamp_pl's max_new_tokens + 1)")
    parser.add_argument("--truncate", type=int, help="max_length of the inputs")
    parser.add_argument("--batch", type=int, help="evaluation batch size")
    parser.add_argument(
        "--attn", default="eager", help="attention in the newer transformers (the bench's lamp_pl config: eager)"
    )
    parser.add_argument("--generate", nargs=3, metavar=("CKPT", "RECORD", "OUT"), help=argparse.SUPPRESS)
    a = parser.parse_args(argv)
    if a.generate:
        checkpoint, record, out = a.generate
        generate(checkpoint, record, out, a.beams, a.max_length, a.truncate, a.attn, a.batch)
        return 0
    summary = json.loads((a.work / "summary.json").read_text())["tasks"][a.task]
    config = json.loads((a.work / "lamp-pl" / "learn" / a.task / "config.yaml").read_text())  # JSON is YAML
    a.beams = a.beams or config["model"]["num_beams"]
    a.max_length = a.max_length or config["model"]["max_new_tokens"] + 1
    a.truncate = a.truncate or config["data"]["max_input_length"]
    a.batch = a.batch or config["data"]["eval_batch_size"]
    checkpoint = summary["training"]["best_checkpoint"]
    (record,) = (a.work / "official").glob(f"*/{a.task}/eval/evaluate_llm.record.json")
    official_record = json.loads(record.read_text())
    official = dict(zip(official_record["prompts"]["eval_dataset"], official_record["evaluations"][-1]["predictions"]))
    (ours_file,) = (a.work / "lamp-pl").glob(f"*/{a.task}/test-official-checkpoint/**/predictions_test.json")
    ours = {g["id"]: g["output"].strip() for g in json.loads(ours_file.read_text())["golds"]}
    plain = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, python in (("official env", a.official_python), ("lamp_pl env", sys.executable)):
            out = Path(folder) / "out.json"
            options = ["--beams", a.beams, "--max-length", a.max_length, "--truncate", a.truncate, "--attn", a.attn]
            options += ["--batch", a.batch]
            command = [python, __file__, a.work, a.task, "--official-python", a.official_python, *options]
            subprocess.run([str(c) for c in [*command, "--generate", checkpoint, record, out]], check=True)
            plain[name] = json.loads(out.read_text())
    old, new = plain["official env"], plain["lamp_pl env"]
    print(f"{a.task}, {len(official)} test questions, checkpoint {checkpoint}")
    print(
        f"official evaluate_llm.py vs plain transformers {old['transformers']}: {agreement(official, old['predictions'])}"
    )
    print(f"lamp-pl test vs plain transformers {new['transformers']}: {agreement(ours, new['predictions'])}")
    print(
        f"plain transformers {old['transformers']} vs {new['transformers']}: "
        f"{agreement(old['predictions'], new['predictions'])}"
    )
    print(
        f"generation alone (tokenize, generate, decode; models loaded): transformers {old['transformers']} "
        f"{old['seconds']:.1f} s, {new['transformers']} {new['seconds']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
