"""Models loaded by concurrent threads leave weight tying on (`lamp_pl.models.pretrained`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Two threads load an encoder at the same moment (as the thread ranks of a sharded index build
# do), then a T5 whose checkpoint stores its shared word embeddings once is loaded.
SCRIPT = """
import json, sys, threading
from transformers import AutoModel, AutoModelForSeq2SeqLM, PreTrainedModel
from lamp_pl.models.pretrained import load_pretrained

bert, t5 = sys.argv[1:]
original, barrier = PreTrainedModel.tie_weights, threading.Barrier(2)

def load():
    barrier.wait()
    load_pretrained(AutoModel, bert)

threads = [threading.Thread(target=load) for _ in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
model = load_pretrained(AutoModelForSeq2SeqLM, t5)
print(json.dumps({
    "tying_restored": PreTrainedModel.tie_weights is original,
    "meta": [n for n, p in model.named_parameters(remove_duplicate=False) if p.is_meta],
    "shared": model.lm_head.weight is model.shared.weight is model.encoder.embed_tokens.weight,
}))
"""


def test_concurrent_loads_keep_weight_tying(tiny_bert, tiny_t5):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_bert), str(tiny_t5)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"tying_restored": True, "meta": [], "shared": True}
