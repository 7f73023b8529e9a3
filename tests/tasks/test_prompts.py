"""Prompt construction: exact official templates, the official token budget, the study's options,
and the task registry's query extraction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamp_pl.prompts import PromptOptions, arrange, build_prompt, count_tokens
from lamp_pl.tasks import builtin_task_names, get_task

# Free texts are decoded after truncation, so hand-written ones stick to what the tiny tokenizer
# round-trips (lowercase words, no "q").
INPUTS = {
    "LaMP_1": 'For an author who has written the paper with the title "deep nets", which reference is related? '
    'Just answer with [1] or [2] without explanation. [1]: "sparse codes" [2]: "moon maps"',
    "LaMP_2": "Which tag does this movie relate to among the following tags? Just answer with the tag name "
    "without further explanation. tags: [sci-fi, comedy] description: a robot learns to love",
    "LaMP_2N": "Which category does this article relate to among the following categories? Just answer with the "
    "category name without further explanation. categories: [politics, sports] article: the team wins",
    "LaMP_3": "What is the score of the following review on a scale of 1 to 5? just answer with 1, 2, 3, 4, or 5 "
    "without further explanation. review: it works fine",
    "LaMP_4": "Generate a headline for the following article: the city opens a new park",
    "LaMP_5": "Generate a title for the following abstract of a paper: we study graphs",
    "LaMP_6": "Generate a subject for the following email: the meeting moved to monday",
    "LaMP_7": "Paraphrase the following tweet without any explanation before or after it: sunny day at the beach",
}
ITEMS = {
    "LaMP_1": [
        {"id": "1", "title": "graph kernels", "abstract": "we define kernels"},
        {"id": "2", "title": "lunar rovers", "abstract": "rovers drive"},
    ],
    "LaMP_2": [
        {"id": "1", "description": "a man walks on the moon", "tag": "sci-fi"},
        {"id": "2", "description": "two friends rob a bank", "tag": "comedy"},
    ],
    "LaMP_2N": [{"id": "1", "text": "the senate votes on a new tax", "title": "tax vote", "category": "politics"}],
    "LaMP_3": [
        {"id": "1", "text": "great value, works well", "score": "5"},
        {"id": "2", "text": "broke after a day", "score": 1},
    ],
    "LaMP_4": [{"id": "1", "text": "the river flooded the town", "title": "Floods Hit Town"}],
    "LaMP_5": [
        {"id": "1", "title": "Sparse Nets", "abstract": "we prune weights"},
        {"id": "2", "title": "Dense Nets", "abstract": "we add links"},
    ],
    "LaMP_6": [{"id": "1", "text": "please send the report by friday", "title": "report due"}],
    "LaMP_7": [{"id": "1", "text": "i love sunny days"}, {"id": "2", "text": "coffee first"}],
}
EXPECTED = {
    "LaMP_1": 'For an author who has written the paper with the title, and "graph kernels", and "lunar rovers" '
    '"deep nets", which reference is related? Just answer with [1] or [2] without explanation. '
    '[1]: "sparse codes" [2]: "moon maps"',
    "LaMP_2": 'the tag for the movie: "a man walks on the moon" is "sci-fi" , and the tag for the movie: '
    '"two friends rob a bank" is "comedy" . ' + INPUTS["LaMP_2"],
    "LaMP_2N": 'the category for the article: "the senate votes on a new tax" is "politics" . ' + INPUTS["LaMP_2N"],
    "LaMP_3": '5 is the score for "great value, works well" , and 1 is the score for "broke after a day" . '
    + INPUTS["LaMP_3"],
    "LaMP_4": '"Floods Hit Town" is the title for "the river flooded the town" . ' + INPUTS["LaMP_4"],
    "LaMP_5": '"Sparse Nets" is a title for "we prune weights" , and "Dense Nets" is a title for "we add links" . '
    "Following the given patterns " + INPUTS["LaMP_5"],
    "LaMP_6": '"report due" is the title for "please send the report by friday" . ' + INPUTS["LaMP_6"],
    "LaMP_7": '"i love sunny days" , and "coffee first"  are written by a person. Following the given patterns '
    + INPUTS["LaMP_7"],
}


@pytest.fixture(scope="module")
def tok(tiny_t5):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_t5)


class WordTokenizer:
    """One token per whitespace-separated word plus ``</s>``: budgets computable by hand."""

    def __call__(self, text, max_length=None, truncation=False):
        words = text.split()
        if truncation and max_length is not None:
            words = words[: max(max_length - 1, 0)]
        return {"input_ids": words + ["</s>"]}

    def batch_decode(self, batch, skip_special_tokens=False):
        return [" ".join(t for t in ids if not (skip_special_tokens and t == "</s>")) for ids in batch]


# --- exact templates -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_official_template_of_each_task(tok, name):
    assert build_prompt(name, INPUTS[name], ITEMS[name], tok, max_length=512) == EXPECTED[name]


def test_lamp1_without_title_word_returns_input(tok):
    text = 'which reference is related? [1]: "a" [2]: "b"'
    assert build_prompt("LaMP_1", text, ITEMS["LaMP_1"], tok) == text


def test_every_builtin_task_is_covered():
    assert set(EXPECTED) == set(builtin_task_names())


# --- the official budget -------------------------------------------------------------------------


def test_saved_tokens_carry_over_to_later_items():
    # input "description: x" = 3 tokens; budget 40 - 3 = 37; share (37 - 1 - 2) // 2 = 17;
    # fixed 'the tag for the movie: " " is "comedy" ' = 10: item 1 may use 7, uses 3 ("a b" + </s>),
    # so item 2 may use 17 + 4 - 10 = 11 tokens: 10 words.
    items = [
        {"description": "a b", "tag": "comedy"},
        {"description": " ".join(f"w{i}" for i in range(1, 13)), "tag": "drama"},
    ]
    prompt = build_prompt("LaMP_2", "description: x", items, WordTokenizer(), max_length=40)
    assert prompt == (
        'the tag for the movie: "a b" is "comedy" , and the tag for the movie: '
        '"w1 w2 w3 w4 w5 w6 w7 w8 w9 w10" is "drama" . description: x'
    )


def test_factor_falls_back_when_items_do_not_fit():
    # input: 7 + 30 words + </s> = 38 tokens > 0.6 * 40, so the budget is 40 - int(f * 40).
    # fixed = 9 title words + 'is the title for " "' (6) + </s> = 16.
    # f=0.6: budget 16, share 15, room -1: fails. f=0.5: budget 20, share 19, room 3: two words.
    text = "Generate a headline for the following article: " + " ".join(["w"] * 30)
    title = "one two three four five six seven eight nine"
    items = [{"title": title, "text": "alpha beta gamma delta"}]
    prompt = build_prompt("LaMP_4", text, items, WordTokenizer(), max_length=40)
    assert prompt == f'"{title}" is the title for "alpha beta" . {text}'


def test_bare_input_when_no_factor_fits_or_no_items(tok):
    long_title = " ".join(["t"] * 50)
    assert (
        build_prompt("LaMP_4", "article: x", [{"title": long_title, "text": "y"}], WordTokenizer(), max_length=40)
        == "article: x"
    )
    for name in builtin_task_names():
        assert build_prompt(name, INPUTS[name], [], tok, max_length=64) == INPUTS[name]


# --- golden cases produced by the official code (tests/data/README.md says how) -------------------

GOLDEN = [json.loads(line) for line in (Path(__file__).parents[1] / "data" / "official_prompts.jsonl").open()]


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_official_prompts_golden_cases(tok, name):
    cases = [case for case in GOLDEN if case["task"] == name]
    paths = {path for case in cases for path in case["paths"]}
    assert {"template", "k0", "zero_room", "fallback", "bare"} <= paths  # every path of the budget is covered
    for case in cases:
        prompt = build_prompt(name, case["input"], case["items"], tok, max_length=case["max_length"])
        # All cases failing at once means the tiny tokenizer trained differently (tokenizers version).
        assert prompt == case["expected"], case


def test_strict_budget_differs_only_where_an_item_had_zero_room(tok):
    strict = PromptOptions(budget="strict")
    changed = 0
    for case in GOLDEN:
        prompt = build_prompt(case["task"], case["input"], case["items"], tok, case["max_length"], strict)
        if "zero_room" not in case["paths"]:
            assert prompt == case["expected"], case
        changed += prompt != case["expected"]
    assert changed > 0


@pytest.mark.parametrize("budget,expected", [("official", "alpha beta gamma delta"), ("strict", "")])
def test_zero_room_item(budget, expected):
    # input 3 tokens, max_length 20: share 20 - 3 - 1 = 16 and the item's fixed part is 16 tokens
    # (9 title words, 'is the title for " "', </s>), so the text's truncation length is exactly 0.
    # official: max_length=0 means "no truncation" to Hugging Face, so the whole text goes in;
    # strict: no room down to factor 0.2; at 0.1 the input reserves 2, room 1: only </s> fits.
    title = "one two three four five six seven eight nine"
    items = [{"title": title, "text": "alpha beta gamma delta"}]
    prompt = build_prompt("LaMP_4", "article: x", items, WordTokenizer(), 20, PromptOptions(budget=budget))
    assert prompt == f'"{title}" is the title for "{expected}" . article: x'


def test_zero_room_in_hugging_face_means_no_truncation(tok):
    # The fact the official budget rests on (checked with transformers 5): 0 does not truncate,
    # a negative length raises (the official retry trigger).
    text = "sparse codes river town"
    assert tok(text, max_length=0, truncation=True)["input_ids"] == tok(text)["input_ids"]
    with pytest.raises(OverflowError):
        tok(text, max_length=-1, truncation=True)


# --- options -------------------------------------------------------------------------------------


def _order_of(prompt: str, k: int) -> list[int]:
    return sorted(range(1, k + 1), key=lambda rank: prompt.index(f'"item{rank} words"'))


@pytest.mark.parametrize(
    "order,k,expected",
    [
        ("start", 5, [1, 2, 3, 4, 5]),
        ("end", 5, [5, 4, 3, 2, 1]),
        ("middle", 5, [4, 2, 1, 3, 5]),
        ("middle", 4, [4, 2, 1, 3]),
        ("middle", 1, [1]),
    ],
)
def test_order(tok, order, k, expected):
    items = [{"text": f"item{rank} words"} for rank in range(1, k + 1)]
    prompt = build_prompt("LaMP_7", INPUTS["LaMP_7"], items, tok, options=PromptOptions(order=order))
    assert _order_of(prompt, k) == expected


def test_random_order_is_seeded_per_question():
    items = [{"text": f"item{rank}"} for rank in range(1, 7)]
    task = get_task("LaMP_7")

    def shuffled(seed, qid):
        return [item["text"] for item in arrange(items, task, PromptOptions(order="random", seed=seed), qid)]

    assert shuffled(0, "q1") == shuffled(0, "q1")
    assert sorted(shuffled(0, "q1")) == sorted(item["text"] for item in items)
    assert any(shuffled(seed, "q1") != shuffled(0, "q1") for seed in range(1, 4))
    assert any(shuffled(0, qid) != shuffled(0, "q1") for qid in ("q2", "q3", "q4"))


def test_only_input_and_only_output_wording(tok):
    text, items = INPUTS["LaMP_2"], ITEMS["LaMP_2"]
    only_input = build_prompt("LaMP_2", text, items, tok, options=PromptOptions(ablation="only_input"))
    assert only_input == 'the movie: "a man walks on the moon" , and the movie: "two friends rob a bank" . ' + text
    only_output = build_prompt("LaMP_2", text, items, tok, options=PromptOptions(ablation="only_output"))
    assert only_output == 'a movie tagged "sci-fi" , and a movie tagged "comedy" . ' + text
    assert "moon" not in only_output and "is the tag" not in only_input


def test_only_output_item_that_does_not_fit_fails_the_attempt():
    # 'a movie tagged "x y z" ' + </s> = 7 tokens, input 3 tokens. max_length 11: budget 8, share 7,
    # fits. max_length 7: even factor 0 (budget 7) leaves a share of 6, so the bare input.
    items = [{"description": "d", "tag": "x y z"}]
    options = PromptOptions(ablation="only_output")
    assert (
        build_prompt("LaMP_2", "description: x", items, WordTokenizer(), 11, options)
        == 'a movie tagged "x y z" . description: x'
    )
    assert build_prompt("LaMP_2", "description: x", items, WordTokenizer(), 7, options) == "description: x"


def test_only_input_undefined_for_lamp7(tok):
    with pytest.raises(ValueError, match="LaMP_7.*only_input"):
        build_prompt("LaMP_7", INPUTS["LaMP_7"], ITEMS["LaMP_7"], tok, options=PromptOptions(ablation="only_input"))


def test_decouple_deranges_outputs_and_keeps_inputs(tok):
    names = ("alpha", "beta", "gamma", "delta", "kappa")
    items = [{"id": str(i), "description": f"{name} plot", "tag": f"tag{i}"} for i, name in enumerate(names)]
    options = PromptOptions(ablation="decouple", seed=1)
    task = get_task("LaMP_2")
    mixed = arrange(items, task, options, "q1")
    assert [m["description"] for m in mixed] == [i["description"] for i in items]
    assert sorted(m["tag"] for m in mixed) == sorted(i["tag"] for i in items)
    assert all(m["tag"] != i["tag"] for m, i in zip(mixed, items))
    assert arrange(items, task, options, "q1") == mixed
    assert items[0]["tag"] == "tag0"  # the caller's items are not modified
    prompt = build_prompt(task, INPUTS["LaMP_2"], items, tok, options=options, question_id="q1")
    assert f'the tag for the movie: "alpha plot" is "{mixed[0]["tag"]}" ' in prompt
    two = arrange(items[:2], task, options, "q9")
    assert [m["tag"] for m in two] == ["tag1", "tag0"]


def test_user_context(tok):
    options = PromptOptions(user_context="user_id")
    bare = build_prompt("LaMP_4", INPUTS["LaMP_4"], [], tok, options=options, user_id="u42")
    assert bare == "User u42: " + INPUTS["LaMP_4"]
    prompt = build_prompt("LaMP_4", INPUTS["LaMP_4"], ITEMS["LaMP_4"], tok, options=options, user_id="u42")
    assert prompt == '"Floods Hit Town" is the title for "the river flooded the town" . User u42: ' + INPUTS["LaMP_4"]
    with pytest.raises(ValueError, match="user_id"):
        build_prompt("LaMP_4", INPUTS["LaMP_4"], [], tok, options=options)


def test_options_are_validated():
    with pytest.raises(ValueError, match="order"):
        PromptOptions(order="sideways")


def test_count_tokens_includes_special_tokens():
    assert count_tokens(WordTokenizer(), "a b") == 3


# --- property: within max_length once truncated, and the input survives ---------------------------

WORDS = [
    "moon",
    "dog",
    "bank",
    "rob",
    "kato",
    "fiz",
    "lumen",
    "graph",
    "nets",
    "the",
    "a",
    "of",
    "and",
    ",",
    ".",
    ":",
    "1",
    "2",
    "3",
    "x",
    "y",
    "z",
    "sparse",
    "codes",
    "river",
    "town",
    "value",
    "works",
]
_TEXT = st.lists(st.sampled_from(WORDS + ["Quiet", "é", '"', "{x}"]), max_size=40).map(" ".join)


@settings(max_examples=50, deadline=None)
@given(
    name=st.sampled_from(sorted(INPUTS)),
    k=st.integers(0, 6),
    max_length=st.integers(16, 256),
    tail=_TEXT,
    free=st.lists(_TEXT, min_size=6, max_size=6),
    data=st.data(),
)
def test_prompt_fits_and_keeps_the_input(tok, name, k, max_length, tail, free, data):
    task = get_task(name)
    ablations = [
        a
        for a in ("both", "only_input", "only_output", "decouple")
        if a != "only_input" or task.input_field is not None
    ]
    options = PromptOptions(
        order=data.draw(st.sampled_from(["start", "end", "middle", "random"])),
        ablation=data.draw(st.sampled_from(ablations)),
        user_context=data.draw(st.sampled_from(["none", "user_id"])),
    )
    items = [
        {f: (free[i] if f == task.free_field else free[i][:30] or "x") for f in task.profile_fields} for i in range(k)
    ]
    text = INPUTS[name] + " " + tail
    prompt = build_prompt(task, text, items, tok, max_length, options, question_id="q", user_id="u1")
    assert len(tok(prompt, truncation=True, max_length=max_length)["input_ids"]) <= max_length
    if options.user_context == "user_id":
        text = "User u1: " + text
    if k == 0 or prompt == text:
        assert prompt == text
    elif name == "LaMP_1":
        end = text.find("title") + 5
        assert prompt.startswith(text[:end] + ", and ") and prompt.endswith(text[end:])
    else:
        assert prompt.endswith(" " + text)


# --- query extraction and retrieval text (lamp_pl.tasks) -----------------------------------------


@pytest.mark.parametrize(
    "name,expected",
    [
        ("LaMP_1", "sparse codes moon maps"),
        ("LaMP_2", "a robot learns to love"),
        ("LaMP_2N", "the team wins"),
        ("LaMP_3", "it works fine"),
        ("LaMP_4", "the city opens a new park"),
        ("LaMP_5", "we study graphs"),
        ("LaMP_6", "the meeting moved to monday"),
        ("LaMP_7", "sunny day at the beach"),
    ],
)
def test_query(name, expected):
    assert get_task(name).query(INPUTS[name]) == expected


def test_query_edge_cases():
    assert get_task("LaMP_1").query('title "a" [1]: " b " [2]: "c "') == "b  c"
    assert get_task("LaMP_1").query('only "two" "quoted"') is None
    assert get_task("LaMP_6").query("subject: re: lunch ") == "re: lunch"
    assert get_task("LaMP_4").query("no marker here") is None


@pytest.mark.parametrize(
    "name,item,expected",
    [
        ("LaMP_1", {"title": "t", "abstract": "a b"}, "t a b"),
        ("LaMP_2", {"description": "d", "tag": "comedy"}, "d"),
        ("LaMP_2N", {"title": "t", "text": "x", "category": "sports"}, "t x"),
        ("LaMP_3", {"text": "r", "score": "5"}, "r"),
        ("LaMP_4", {"title": "t", "text": "x"}, "t x"),
        ("LaMP_5", {"title": "t", "abstract": "a"}, "t a"),
        ("LaMP_6", {"title": "t", "text": "x"}, "x"),
        ("LaMP_7", {"text": "x"}, "x"),
    ],
)
def test_item_text(name, item, expected):
    assert get_task(name).item_text(item) == expected
