"""Deterministic synthetic LaMP-format data with a planted personalization signal.

Each user has a few "moods": a preferred label (classification), score (rating) or signature
phrase (generation), one per group of topics. Profile items and questions are written about
topics, and an item's output follows the user's mood for its topic. So:

* k = 0 cannot know the user's preference (chance level);
* a random profile item reveals one of the user's moods (better than chance);
* an item retrieved for the question's topic reveals the right mood (best).

That ordering is what tests, the demo and the benchmarks check.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import random
from dataclasses import dataclass
from pathlib import Path

from lamp_pl.cache import stable_hash, write_text_atomic
from lamp_pl.errors import ConfigError
from lamp_pl.tasks import Task, get_task

INPUTS = {
    "LaMP_1": 'For an author who has written the paper with the title "{title}", which reference is related? '
    'Just answer with [1] or [2] without explanation. [1]: "{ref1}" [2]: "{ref2}"',
    "LaMP_2": "Which tag does this movie relate to among the following tags? Just answer with the tag name "
    "without further explanation. tags: [{labels}] description: {text}",
    "LaMP_2N": "Which category does this article relate to among the following categories? Just answer with the "
    "category name without further explanation. categories: [{labels}] article: {text}",
    "LaMP_3": "What is the score of the following review on a scale of 1 to 5? just answer with 1, 2, 3, 4, or 5 "
    "without further explanation. review: {text}",
    "LaMP_4": "Generate a headline for the following article: {text}",
    "LaMP_5": "Generate a title for the following abstract of a paper: {text}",
    "LaMP_6": "Generate a subject for the following email: {text}",
    "LaMP_7": "Paraphrase the following tweet without any explanation before or after it: {text}",
}


@dataclass
class SyntheticSpec:
    """What to generate."""

    task: str = "LaMP_2"
    users: int = 60
    """Users in all (user-based: split 60/20/20 between train/dev/test)."""
    profile_size: tuple[int, int] = (8, 24)
    """Min and max profile items per user (drawn uniformly)."""
    questions_per_user: int = 1
    """Questions per user. Above 1 every question carries its ``user_id`` (LaMP's user-based files
    have one question per user and no ``user_id``), so the users are counted, indexed and named
    in prompts as the users they are, not one per question."""
    time_based: bool = False
    """Time-based: every user appears in every split, with user ids, and a question's profile is
    the user's history before it (so a user's questions share most of their profile)."""
    vocab_size: int = 600
    topics: int = 6
    moods: int = 2
    """Distinct preferences per user, each tied to a group of topics."""
    noise: float = 0.1
    """Chance that a profile item's output ignores the user's mood."""
    text_words: int | tuple[int, int] = 24
    """Words of each item's and question's main text: a count, or the smallest and largest,
    drawn per text (real LaMP texts vary in length, which is what length-sorted batches use)."""
    seed: int = 0
    test_outputs: bool = True
    """Write golds for the test split (real LaMP hides them)."""

    def __post_init__(self) -> None:
        words = self.text_words
        if isinstance(words, int) and words < 1 or not isinstance(words, int) and not 1 <= words[0] <= words[1]:
            raise ConfigError(f"synthetic.text_words: a count >= 1 or [min, max] with 1 <= min <= max, got {words}")
        if not 0 <= self.profile_size[0] <= self.profile_size[1]:
            raise ConfigError(f"synthetic.profile_size: [min, max] with 0 <= min <= max, got {self.profile_size}")


def _vocabulary(size: int, rng: random.Random) -> list[str]:
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.randint(2, 3)
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables)))
    return sorted(words)


class _World:
    """Vocabulary, topics and each user's moods: everything the records are drawn from."""

    def __init__(self, spec: SyntheticSpec, task: Task) -> None:
        self.spec, self.task, self.rng = spec, task, random.Random(spec.seed)
        vocab = _vocabulary(spec.vocab_size, self.rng)
        per_topic = max(4, len(vocab) // (2 * spec.topics))
        self.topic_words = [vocab[i * per_topic : (i + 1) * per_topic] for i in range(spec.topics)]
        self.filler = vocab[spec.topics * per_topic :] or vocab

    def text(self, topic: int, words: int | None = None) -> str:
        n = words or self.text_length()
        pool = self.topic_words[topic]
        return " ".join(
            self.rng.choice(pool) if self.rng.random() < 0.75 else self.rng.choice(self.filler) for _ in range(n)
        )

    def text_length(self) -> int:
        """Words of one main text (a fixed count draws nothing: its data stay as they were)."""
        words = self.spec.text_words
        return words if isinstance(words, int) else self.rng.randint(*words)

    def moods(self) -> list[str]:
        """One user's preferences: labels, scores, or signature phrases."""
        if self.task.labels and self.task.name != "LaMP_1":
            return self.rng.sample(list(self.task.labels), self.spec.moods)
        return [" ".join(self.rng.sample(self.filler, 2)) for _ in range(self.spec.moods)]

    def output(self, mood: str, topic: int) -> str:
        if self.task.metric_kind == "generation":
            return f"{mood} {' '.join(self.rng.sample(self.topic_words[topic], 3))}"
        return mood

    def item(self, uid: str, j: int, moods: list[str], date: datetime.date) -> dict:
        topic = self.rng.randrange(self.spec.topics)
        mood = moods[topic % len(moods)]
        if self.rng.random() < self.spec.noise:
            mood = self.moods()[0]
        out_field, in_field = self.task.output_field, self.task.input_field
        item = {f: self.text(topic, 6) for f in self.task.profile_fields}
        if in_field:
            item[in_field] = self.text(topic)
        if out_field:
            item[out_field] = (
                self.output(mood, topic) if self.task.name != "LaMP_1" else f"{mood} {self.text(topic, 4)}"
            )
        item["id"], item["date"] = f"{uid}{j:03d}", date.isoformat()
        return item

    def question(self, qid: str, moods: list[str], profile: list[dict]) -> tuple[str, str]:
        """An input about a random topic and its gold output under the user's mood."""
        topic = self.rng.randrange(self.spec.topics)
        mood = moods[topic % len(moods)]
        if self.task.name == "LaMP_1":
            # The related reference is on one of the user's topics, the other on another topic.
            own = self.rng.choice(profile)["title"] if profile else self.text(topic, 6)
            other = self.text((topic + 1) % self.spec.topics, 6)
            gold = self.rng.choice(["[1]", "[2]"])
            refs = (own, other) if gold == "[1]" else (other, own)
            text = INPUTS["LaMP_1"].format(title=self.text(topic, 6), ref1=refs[0], ref2=refs[1])
            return text, gold
        labels = ", ".join(self.task.labels or ())
        template = INPUTS.get(self.task.name, "Answer for the following input: {text}")
        return template.format(text=self.text(topic), labels=labels), self.output(mood, topic)


def generate(spec: SyntheticSpec) -> dict[str, tuple[list[dict], dict]]:
    """Build every split's (questions, outputs) documents in memory."""
    task = get_task(spec.task)
    world = _World(spec, task)
    splits: dict[str, tuple[list[dict], dict]] = {
        s: ([], {"task": task.name, "golds": []}) for s in ("train", "dev", "test")
    }
    start = datetime.date(2015, 1, 1)
    for u in range(spec.users):
        uid = f"{u + 1:04d}"
        moods = world.moods()
        size = world.rng.randint(*spec.profile_size)
        n_questions = spec.questions_per_user * (3 if spec.time_based else 1)
        timeline = [
            world.item(uid, j, moods, start + datetime.timedelta(days=3 * j)) for j in range(size + n_questions)
        ]
        if spec.time_based:
            owners = (
                ["train"] * spec.questions_per_user
                + ["dev"] * spec.questions_per_user
                + ["test"] * spec.questions_per_user
            )
        else:
            fraction = u / spec.users
            owners = ["train" if fraction < 0.6 else "dev" if fraction < 0.8 else "test"] * n_questions
        for q, split in enumerate(owners):
            profile = timeline[: size + q] if spec.time_based else timeline[:size]
            qid = f"{uid}{q:02d}"
            text, gold = world.question(qid, moods, profile)
            record = {"id": qid, "input": text, "profile": profile}
            if spec.time_based or spec.questions_per_user > 1:
                record["user_id"] = uid
            splits[split][0].append(record)
            splits[split][1]["golds"].append({"id": qid, "output": gold})
    return splits


def _files(spec: SyntheticSpec, folder: Path) -> dict[str, list[tuple[Path, str]]]:
    """Each split's files: the questions, and the outputs unless the test golds are withheld."""
    return {
        split: [(folder / f"{split}_questions.json", "questions")]
        + ([(folder / f"{split}_outputs.json", "outputs")] if split != "test" or spec.test_outputs else [])
        for split in ("train", "dev", "test")
    }


def write_synthetic(dest: str | Path, spec: SyntheticSpec | None = None, **overrides) -> Path:
    """Write `<dest>/<task>/<split>_{questions,outputs}.json` atomically; returns the task folder.

    Identical arguments give byte-identical files, so an existing folder is left as it is.
    """
    spec = spec or SyntheticSpec(**overrides)
    folder = Path(dest) / get_task(spec.task).name
    files = _files(spec, folder)
    for split, (questions, outputs) in generate(spec).items():
        for path, kind in files[split]:
            text = json.dumps(questions if kind == "questions" else outputs, indent=1)
            if not (path.is_file() and path.read_text() == text):
                write_text_atomic(path, text)
    return folder


def write_synthetic_once(dest: str | Path, spec: SyntheticSpec, stamps: str | Path) -> Path:
    """`write_synthetic`, skipped when a stamp under `stamps` records that the files are those it
    wrote from this very spec, unchanged since (same sizes and modification times): a command
    that starts again on the demo's data does not generate it all again only to compare it.
    """
    folder = Path(dest) / get_task(spec.task).name
    stamp = Path(stamps) / f"{stable_hash([dataclasses.asdict(spec), str(folder.resolve())])}.json"
    paths = [path for entries in _files(spec, folder).values() for path, _ in entries]

    def states() -> list[list[int]] | None:
        try:
            return [[path.stat().st_size, path.stat().st_mtime_ns] for path in paths]
        except FileNotFoundError:
            return None

    try:
        recorded = json.loads(stamp.read_text())
        if recorded is not None and recorded == states():
            return folder
    except (OSError, ValueError):
        pass  # no stamp yet, or an unreadable one: write (or check) the files
    write_synthetic(dest, spec)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(stamp, json.dumps(states()))
    return folder
