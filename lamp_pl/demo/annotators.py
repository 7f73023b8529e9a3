"""A synthetic per-annotator task with a planted annotator bias, in GoEmotions' raw CSV schema.

Every text is about one topic and carries that topic's emotion, which any annotator sees. On top,
each annotator has a personal *bias emotion* that they add to (almost) every text they label. So:

* the non-personalized prompt learns the topic emotion but can only guess the bias (chance among
  `bias_pool` emotions);
* the user-id context lets a model memorize each training annotator's bias (known users);
* the annotator's own labelled examples in the prompt reveal the bias (any user, also held out);
* a per-user adapter trained on the annotator's profile learns the bias.

The CSV goes through the real converter (`convert_goemotions`), which the demo thereby exercises;
`write_demo` also builds a tokenizer and tiny T5 folder trained on the converted corpus, so the
shipped `annotators/*` configs run offline on CPU.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from lamp_pl.cache import write_text_atomic
from lamp_pl.data.annotators import EMOTIONS, convert_goemotions

TOPIC_EMOTIONS = ("admiration", "curiosity", "sadness", "gratitude")
BIAS_EMOTIONS = ("anger", "joy", "fear", "love")
EXTRA_COLUMNS = ("author", "subreddit", "link_id", "parent_id", "created_utc")  # real files have them; ignored


@dataclass
class AnnotatorSpec:
    """What to generate."""

    annotators: int = 24
    texts: int = 300
    annotations_per_annotator: int = 60
    sparse_annotators: int = 2
    """Annotators with only 3 annotations (dropped by the converter's minimum)."""
    unclear: float = 0.03
    """Share of rows flagged `example_very_unclear` (dropped by the converter)."""
    noise: float = 0.05
    """Chance that an annotator forgets their bias emotion on a text."""
    words: int = 8
    seed: int = 0


def _words(rng: random.Random, count: int) -> list[str]:
    found: set[str] = set()
    while len(found) < count:
        found.add("".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(2, 3))))
    return sorted(found)


def generate_rows(spec: AnnotatorSpec) -> list[dict[str, str]]:
    """The raw rows, one per (text, annotator), in GoEmotions' column layout."""
    rng = random.Random(spec.seed)
    vocab = _words(rng, 40 * len(TOPIC_EMOTIONS))
    topic_words = [vocab[i * 40 : (i + 1) * 40] for i in range(len(TOPIC_EMOTIONS))]
    texts = []
    for t in range(spec.texts):
        topic = rng.randrange(len(TOPIC_EMOTIONS))
        texts.append((f"t{t:05d}", topic, " ".join(rng.choice(topic_words[topic]) for _ in range(spec.words))))
    rows = []
    for a in range(spec.annotators + spec.sparse_annotators):
        rater = str(1000 + a)
        bias = BIAS_EMOTIONS[a % len(BIAS_EMOTIONS)]
        count = spec.annotations_per_annotator if a < spec.annotators else 3
        for text_id, topic, text in rng.sample(texts, count):
            chosen = {TOPIC_EMOTIONS[topic]} | ({bias} if rng.random() >= spec.noise else set())
            row = {
                "text": text,
                "id": text_id,
                "author": "someone",
                "subreddit": "synthetic",
                "link_id": "t3_x",
                "parent_id": "t1_x",
                "created_utc": "1546300800.0",
                "rater_id": rater,
                "example_very_unclear": "TRUE" if rng.random() < spec.unclear else "FALSE",
            }
            row.update({emotion: "1" if emotion in chosen else "0" for emotion in EMOTIONS})
            rows.append(row)
    return rows


def write_raw_csv(path: str | Path, spec: AnnotatorSpec | None = None) -> Path:
    """Write the synthetic raw CSV atomically (GoEmotions' header plus its ignored extra columns)."""
    rows = generate_rows(spec or AnnotatorSpec())
    stream = io.StringIO()
    writer = csv.DictWriter(
        stream, fieldnames=["text", "id", *EXTRA_COLUMNS, "rater_id", "example_very_unclear", *EMOTIONS]
    )
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, stream.getvalue())


def _corpus(task_folder: Path) -> list[str]:
    texts = []
    for path in sorted(task_folder.glob("*_questions.json")):
        for record in json.loads(path.read_text()):
            # The user-id context prefix too, or the ids would tokenize to <unk> and say nothing.
            texts.append(f"User {record['user_id']}: {record['input']}")
            texts.extend(f'"{item["text"]}" is labelled "{item["labels"]}"' for item in record["profile"][:5])
    for path in sorted(task_folder.glob("*_outputs.json")):
        texts.extend(g["output"] for g in json.loads(path.read_text())["golds"])
    return texts


def write_demo(dest: str | Path, spec: AnnotatorSpec | None = None, split: str = "known_users") -> dict:
    """Raw CSV -> converter -> `<dest>/data/GoEmotions{,.json}`, plus `<dest>/t5` (tokenizer and a
    tiny random T5 trained on nothing yet). Returns the converter's summary."""
    from lamp_pl.demo.models import build_tiny_t5

    dest = Path(dest)
    raw = write_raw_csv(dest / "raw" / "goemotions_synthetic.csv", spec)
    summary = convert_goemotions([raw], dest / "data", split=split, min_annotations=10, seed=0, list_labels=False)
    build_tiny_t5(dest / "t5", _corpus(dest / "data" / "GoEmotions"), vocab_size=1000)
    return summary
