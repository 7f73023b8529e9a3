"""LongLaMP's evaluation as a torchmetrics metric: ROUGE-1/2/L/Lsum, BLEU and METEOR.

LongLaMP's script scores stripped predictions against one reference each with Hugging Face
`evaluate`'s ``rouge``, ``sacrebleu`` and ``meteor`` and reports ``rouge-1``, ``rouge-2``,
``rouge-L``, ``rouge-LSum`` (F-measures in [0, 1]), ``bleu`` (sacreBLEU's corpus score, 0-100)
and ``meteor`` (mean of NLTK's per-example METEOR, in [0, 1]). `LongFormMetrics` reports the same
names and scales, with states that DDP ranks sum exactly:

* ROUGE: per-example F-measures of ``rouge_score``'s default tokenizer without stemming (ROUGE-Lsum:
  summary-level union LCS over newline-separated sentences, as ``rouge_score``), summed. The mean
  is reported; `evaluate`'s default aggregation reports the median of 1000 bootstrap resamples
  of that mean, which differs from it by resampling noise only.
* BLEU: sacreBLEU's sufficient statistics (13a tokens; matched and total n-grams of orders 1-4,
  hypothesis and reference lengths), summed, then `sacrebleu.BLEU.compute_bleu` with `evaluate`'s
  defaults (exponential smoothing): a corpus BLEU over all ranks' examples, not a mean.
* METEOR: `nltk.translate.meteor_score` (alpha 0.9, beta 3, gamma 0.5) over ``nltk.word_tokenize``
  tokens, summed. It needs NLTK's WordNet and punkt data, downloaded separately; where they are
  absent METEOR is left out of the results with one warning saying how to get them.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from lamp_pl.extras import require

NLTK_DOWNLOAD = "python -m nltk.downloader wordnet omw-1.4 punkt_tab"
_warned = False
_SUM_DTYPE = torch.float64  # as lamp_pl.metrics.lamp: averages exact to ~1e-12
_NON_ALPHANUM = re.compile(r"[^a-z0-9]+")


def rouge_tokenize(text: str) -> list[str]:
    """``rouge_score``'s default tokenizer without stemming (as `lamp_pl.metrics.lamp.rouge_tokenize`)."""
    return _NON_ALPHANUM.sub(" ", text.lower()).split()


def _f_measure(precision: float, recall: float) -> float:
    """Written as ``rouge_score.scoring.fmeasure``, for bitwise parity."""
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    num, den = num.to(_SUM_DTYPE), den.to(_SUM_DTYPE)
    return num / den if float(den) > 0 else torch.zeros_like(num)


def _ngram_f(target: list[str], pred: list[str], n: int) -> float:
    """ROUGE-n F-measure, as ``rouge_score`` counts n-grams."""
    target_grams = Counter(tuple(target[i : i + n]) for i in range(len(target) - n + 1))
    pred_grams = Counter(tuple(pred[i : i + n]) for i in range(len(pred) - n + 1))
    overlap = sum(min(count, pred_grams[gram]) for gram, count in target_grams.items())
    return _f_measure(overlap / max(sum(pred_grams.values()), 1), overlap / max(sum(target_grams.values()), 1))


def _lcs_indices(ref: list[str], can: list[str]) -> list[int]:
    """Positions in `ref` of one longest common subsequence, read back as ``rouge_score`` does."""
    table = [[0] * (len(can) + 1) for _ in range(len(ref) + 1)]
    for i, r in enumerate(ref, 1):
        for j, c in enumerate(can, 1):
            table[i][j] = table[i - 1][j - 1] + 1 if r == c else max(table[i - 1][j], table[i][j - 1])
    found, i, j = [], len(ref), len(can)
    while i > 0 and j > 0:
        if ref[i - 1] == can[j - 1]:
            found.append(i - 1)
            i, j = i - 1, j - 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return found[::-1]


def _rougelsum_f(target: str, pred: str) -> float:
    """Summary-level ROUGE-L F-measure over newline-separated sentences (each token counted once)."""
    refs = [rouge_tokenize(s) for s in target.split("\n") if s]
    cans = [rouge_tokenize(s) for s in pred.split("\n") if s]
    m, n = sum(map(len, refs)), sum(map(len, cans))
    if not refs or not cans or not m or not n:
        return 0.0
    left_r, left_c = Counter(t for s in refs for t in s), Counter(t for s in cans for t in s)
    hits = 0
    for ref in refs:
        union = sorted(set().union(*(_lcs_indices(ref, can) for can in cans)))
        for token in (ref[i] for i in union):
            if left_c[token] > 0 and left_r[token] > 0:
                hits += 1
                left_c[token] -= 1
                left_r[token] -= 1
    return _f_measure(hits / n, hits / m)


def _rougel_f(target: list[str], pred: list[str]) -> float:
    if not target or not pred:
        return 0.0
    lcs = len(_lcs_indices(target, pred))
    return _f_measure(lcs / len(pred), lcs / len(target))


def nltk_meteor_resources() -> tuple[Callable[[str], list[str]], Any] | None:
    """NLTK's tokenizer and WordNet when their data is installed; None (warned once) otherwise."""
    global _warned
    nltk = require("nltk", "LongLaMP's METEOR")

    try:
        nltk.data.find("corpora/wordnet")
        nltk.data.find("tokenizers/punkt_tab/english/")
    except LookupError:
        if not _warned:
            _warned = True
            warnings.warn(
                "METEOR skipped: NLTK's WordNet / punkt data is not installed; get it with "
                f"`{NLTK_DOWNLOAD}` (the other LongLaMP metrics are computed)",
                stacklevel=2,
            )
        return None
    from nltk.corpus import wordnet

    return nltk.word_tokenize, wordnet


class LongFormMetrics(Metric):
    """ROUGE-1/2/L/Lsum, corpus BLEU and METEOR of long generated texts (LongLaMP, LaMP-QA).

    Args:
        meteor: (tokenize, wordnet) for METEOR; default: NLTK's when its data is installed, else
            METEOR is skipped (one warning).
        **kwargs: Forwarded to :class:`torchmetrics.Metric`.
    """

    is_differentiable = False
    full_state_update = False
    ROUGE = (
        ("rouge-1", "rouge1_sum"),
        ("rouge-2", "rouge2_sum"),
        ("rouge-L", "rougel_sum"),
        ("rouge-LSum", "rougelsum_sum"),
    )

    def __init__(self, meteor: tuple[Callable[[str], list[str]], Any] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        require("sacrebleu", "LongLaMP's BLEU")
        from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

        self._bleu_tokenize = Tokenizer13a()
        self._meteor = meteor if meteor is not None else nltk_meteor_resources()
        for _, state in self.ROUGE:
            self._add_sum_state(state, torch.tensor(0.0, dtype=_SUM_DTYPE))
        self._add_sum_state("meteor_sum", torch.tensor(0.0, dtype=_SUM_DTYPE))
        self._add_sum_state("bleu_correct", torch.zeros(4, dtype=torch.long))
        self._add_sum_state("bleu_total", torch.zeros(4, dtype=torch.long))
        self._add_sum_state("bleu_lengths", torch.zeros(2, dtype=torch.long))  # hypothesis, reference
        self._add_sum_state("total", torch.tensor(0, dtype=torch.long))

    def _add_sum_state(self, name: str, default: Tensor) -> None:
        self.add_state(name, default=default, dist_reduce_fx="sum")

    def _bleu_stats(self, pred: str, target: str) -> tuple[list[int], list[int], int, int]:
        from sacrebleu.metrics.helpers import extract_all_word_ngrams

        hyp_grams, hyp_len = extract_all_word_ngrams(self._bleu_tokenize(pred.rstrip()), 1, 4)
        ref_grams, ref_len = extract_all_word_ngrams(self._bleu_tokenize(target.rstrip()), 1, 4)
        correct, total = [0] * 4, [0] * 4
        for gram, count in hyp_grams.items():
            total[len(gram) - 1] += count
            correct[len(gram) - 1] += min(count, ref_grams.get(gram, 0))
        return correct, total, hyp_len, ref_len

    def update(self, preds: Sequence[str], targets: Sequence[str]) -> None:
        """Accumulate a batch of generated texts and their references."""
        if isinstance(preds, str) or isinstance(targets, str):
            raise TypeError("preds and targets must be sequences of strings, not a single string")
        if len(preds) != len(targets):
            raise ValueError(f"got {len(preds)} predictions but {len(targets)} targets")
        preds, targets = [p.strip() for p in preds], [t.strip() for t in targets]  # as LongLaMP's postprocess
        sums = dict.fromkeys([s for _, s in self.ROUGE] + ["meteor_sum"], 0.0)
        correct, total, lengths = [0] * 4, [0] * 4, [0, 0]
        for pred, target in zip(preds, targets):
            p, t = rouge_tokenize(pred), rouge_tokenize(target)
            sums["rouge1_sum"] += _ngram_f(t, p, 1)
            sums["rouge2_sum"] += _ngram_f(t, p, 2)
            sums["rougel_sum"] += _rougel_f(t, p)
            sums["rougelsum_sum"] += _rougelsum_f(target, pred)
            c, n, hyp_len, ref_len = self._bleu_stats(pred, target)
            correct = [a + b for a, b in zip(correct, c)]
            total = [a + b for a, b in zip(total, n)]
            lengths = [lengths[0] + hyp_len, lengths[1] + ref_len]
            if self._meteor is not None:
                from nltk.translate.meteor_score import meteor_score

                tokenize, wordnet = self._meteor
                sums["meteor_sum"] += meteor_score([tokenize(target)], tokenize(pred), wordnet=wordnet)
        for name, value in sums.items():
            setattr(self, name, getattr(self, name) + value)
        device = self.total.device
        self.bleu_correct += torch.tensor(correct, dtype=torch.long, device=device)
        self.bleu_total += torch.tensor(total, dtype=torch.long, device=device)
        self.bleu_lengths += torch.tensor(lengths, dtype=torch.long, device=device)
        self.total += len(preds)

    def compute(self) -> dict[str, Tensor]:
        """LongLaMP's names: rouge-1, rouge-2, rouge-L, rouge-LSum, bleu (0-100), meteor (when available)."""
        from sacrebleu.metrics.bleu import BLEU

        values = {name: _safe_div(getattr(self, state), self.total) for name, state in self.ROUGE}
        hyp_len, ref_len = (int(v) for v in self.bleu_lengths.tolist())
        bleu = 0.0
        if int(self.total) and hyp_len:
            bleu = BLEU.compute_bleu(
                self.bleu_correct.tolist(), self.bleu_total.tolist(), hyp_len, ref_len, smooth_method="exp"
            ).score
        values["bleu"] = torch.tensor(bleu, dtype=_SUM_DTYPE, device=self.total.device)
        if self._meteor is not None:
            values["meteor"] = _safe_div(self.meteor_sum, self.total)
        return values


__all__ = ["NLTK_DOWNLOAD", "LongFormMetrics", "nltk_meteor_resources"]
