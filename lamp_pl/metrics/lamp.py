"""Torchmetrics ports of the official LaMP evaluation scripts.

Every metric keeps only sum-reduced numeric counters as state, so DDP ranks
combine exactly (no gathering of strings) and the epoch value equals what the
official single-process script would report over the union of all ranks' data.

Each ``update`` takes decoded strings (``preds``, ``targets``); each
``compute`` returns a dict of float tensors:

* :class:`ClassificationMetrics` (LaMP-1, LaMP-2, LaMP-2N): ``accuracy``, ``f1``.
* :class:`RegressionMetrics` (LaMP-3): ``mae``, ``rmse``.
* :class:`GenerationMetrics` (LaMP-4..7): ``rouge-1``, ``rouge-L``.
* ``longform`` (LongLaMP, LaMP-QA): `lamp_pl.metrics.longform.LongFormMetrics`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = [
    "ClassificationMetrics",
    "GenerationMetrics",
    "RegressionMetrics",
    "build_metrics",
    "rouge_tokenize",
]

# Same pattern as rouge_score's default tokenizer; runs of non-alphanumerics
# collapse to one separator.
_NON_ALPHANUM_RE = re.compile(r"[^a-z0-9]+")

# Float sums are accumulated in float64 so that averages over a whole LaMP split
# match the numpy/sklearn reference to ~1e-12 rather than float32's ~1e-6.
_SUM_DTYPE = torch.float64


def _normalize(texts: Sequence[str]) -> list[str]:
    """Strip surrounding whitespace, as the official ``postprocess_text`` does."""
    return [t.strip() for t in texts]


def _checked_pairs(preds: Sequence[str], targets: Sequence[str]) -> tuple[list[str], list[str]]:
    """Validate a batch and return normalized ``(preds, targets)``."""
    # A bare string would silently be treated as a sequence of characters.
    if isinstance(preds, str) or isinstance(targets, str):
        raise TypeError("preds and targets must be sequences of strings, not a single string")
    if len(preds) != len(targets):
        raise ValueError(f"got {len(preds)} predictions but {len(targets)} targets")
    return _normalize(preds), _normalize(targets)


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """Elementwise ``num / den`` with 0 where ``den == 0`` (sklearn's zero_division=0)."""
    num = num.to(_SUM_DTYPE)
    den = den.to(_SUM_DTYPE)
    nonzero = den > 0
    # Divide by 1 where den == 0 so no NaN is produced even transiently.
    return torch.where(nonzero, num / torch.where(nonzero, den, torch.ones_like(den)), torch.zeros_like(num))


def _f_measure(precision: float, recall: float) -> float:
    """Harmonic mean, written exactly as ``rouge_score.scoring.fmeasure`` for bitwise parity."""
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def rouge_tokenize(text: str) -> list[str]:
    """Tokenize like ``rouge_score``'s default tokenizer without stemming.

    Args:
        text: Raw text.

    Returns:
        Lowercased alphanumeric tokens.
    """
    # Lowercasing must precede the ASCII filter: some characters lowercase into
    # ASCII plus combining marks (e.g. "İ" -> "i̇"), and rouge_score keeps the "i".
    return _NON_ALPHANUM_RE.sub(" ", text.lower()).split()


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, with an O(min(|a|,|b|)) memory DP."""
    if len(b) > len(a):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        prev_diag = 0
        for j, y in enumerate(b, start=1):
            above = row[j]
            row[j] = prev_diag + 1 if x == y else max(above, row[j - 1])
            prev_diag = above
    return row[-1]


def _rouge1_f(target: list[str], pred: list[str]) -> float:
    """ROUGE-1 F-measure, mirroring ``rouge_scorer._score_ngrams`` for n=1."""
    target_counts, pred_counts = Counter(target), Counter(pred)
    overlap = sum(min(c, pred_counts[tok]) for tok, c in target_counts.items())
    precision = overlap / max(len(pred), 1)
    recall = overlap / max(len(target), 1)
    return _f_measure(precision, recall)


def _rougel_f(target: list[str], pred: list[str]) -> float:
    """ROUGE-L F-measure, mirroring ``rouge_scorer._score_lcs``."""
    if not target or not pred:
        return 0.0
    lcs = _lcs_length(target, pred)
    return _f_measure(lcs / len(pred), lcs / len(target))


class _LaMPMetric(Metric):
    """Common torchmetrics settings for the LaMP metrics."""

    is_differentiable = False
    # update() only adds to counters, so forward() may use the cheaper
    # reduce-state path instead of a full second update.
    full_state_update = False

    def _add_sum_state(self, name: str, default: Tensor) -> None:
        self.add_state(name, default=default, dist_reduce_fx="sum")


class ClassificationMetrics(_LaMPMetric):
    """Accuracy and macro-F1 over a fixed label set (LaMP-1, LaMP-2, LaMP-2N).

    Outputs that are not exactly a label (after stripping) map to index -1: for
    accuracy they only match a gold that is itself outside the label set, and for
    F1 they count as a false negative of the gold class, exactly as sklearn's
    ``f1_score(..., labels=range(n), average="macro")`` treats them.

    Args:
        labels: The task's label strings; their order fixes the class indices.
        **kwargs: Forwarded to :class:`torchmetrics.Metric`.
    """

    def __init__(self, labels: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(labels, str) or len(labels) == 0:
            raise ValueError("labels must be a non-empty sequence of strings")
        self.labels = list(labels)
        # The official script uses list.index, i.e. the first occurrence wins.
        self._index: dict[str, int] = {}
        for i, label in enumerate(self.labels):
            self._index.setdefault(label, i)
        n = len(self.labels)
        for name in ("tp", "fp", "fn"):
            self._add_sum_state(name, torch.zeros(n, dtype=torch.long))
        self._add_sum_state("correct", torch.tensor(0, dtype=torch.long))
        self._add_sum_state("total", torch.tensor(0, dtype=torch.long))

    def _to_indices(self, texts: list[str]) -> Tensor:
        return torch.tensor([self._index.get(t, -1) for t in texts], dtype=torch.long, device=self.tp.device)

    def update(self, preds: Sequence[str], targets: Sequence[str]) -> None:
        """Accumulate a batch of decoded predictions and gold labels."""
        preds, targets = _checked_pairs(preds, targets)
        pred_idx, gold_idx = self._to_indices(preds), self._to_indices(targets)
        hit = pred_idx == gold_idx
        n = len(self.labels)
        self.tp += torch.bincount(gold_idx[hit & (gold_idx >= 0)], minlength=n)
        self.fp += torch.bincount(pred_idx[~hit & (pred_idx >= 0)], minlength=n)
        self.fn += torch.bincount(gold_idx[~hit & (gold_idx >= 0)], minlength=n)
        self.correct += hit.sum()
        self.total += hit.numel()

    def compute(self) -> dict[str, Tensor]:
        """Return ``{"accuracy", "f1"}``; both are 0 before any update."""
        per_class_f1 = _safe_div(2 * self.tp, 2 * self.tp + self.fp + self.fn)
        return {
            "accuracy": _safe_div(self.correct, self.total),
            "f1": per_class_f1.mean(),
        }


class RegressionMetrics(_LaMPMetric):
    """MAE and RMSE of numeric ratings (LaMP-3).

    A prediction that does not parse as a float is replaced, as in the official
    script, by whichever end of the 1-5 scale is farther from the gold rating,
    i.e. it is scored as badly as a valid rating could be. "nan", "inf" and
    "-inf" (which Python's float() accepts) count as unparseable too, so one
    such output never turns the MAE into NaN or infinity (the official script
    would report that).

    Args:
        **kwargs: Forwarded to :class:`torchmetrics.Metric`.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._add_sum_state("abs_err", torch.tensor(0.0, dtype=_SUM_DTYPE))
        self._add_sum_state("sq_err", torch.tensor(0.0, dtype=_SUM_DTYPE))
        self._add_sum_state("total", torch.tensor(0, dtype=torch.long))

    @staticmethod
    def _parse_pred(pred: str, gold: float) -> float:
        try:
            value = float(pred)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return value
        return 1.0 if abs(1 - gold) > abs(5 - gold) else 5.0

    def update(self, preds: Sequence[str], targets: Sequence[str]) -> None:
        """Accumulate a batch; targets must parse as floats, predictions need not."""
        preds, targets = _checked_pairs(preds, targets)
        golds = [float(t) for t in targets]
        values = [self._parse_pred(p, g) for p, g in zip(preds, golds)]
        device = self.abs_err.device
        err = torch.tensor(values, dtype=_SUM_DTYPE, device=device) - torch.tensor(
            golds, dtype=_SUM_DTYPE, device=device
        )
        self.abs_err += err.abs().sum()
        self.sq_err += err.square().sum()
        self.total += err.numel()

    def compute(self) -> dict[str, Tensor]:
        """Return ``{"mae", "rmse"}``; both are 0 before any update."""
        return {
            "mae": _safe_div(self.abs_err, self.total),
            "rmse": _safe_div(self.sq_err, self.total).sqrt(),
        }


class GenerationMetrics(_LaMPMetric):
    """Example-averaged ROUGE-1 and ROUGE-L F-measure (LaMP-4..7).

    Matches ``rouge_score.rouge_scorer.RougeScorer(["rouge1", "rougeL"],
    use_stemmer=False)`` per example, averaged with equal weight per example; it
    is reimplemented here so that rouge_score is not a runtime dependency.

    Args:
        **kwargs: Forwarded to :class:`torchmetrics.Metric`.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._add_sum_state("rouge1_sum", torch.tensor(0.0, dtype=_SUM_DTYPE))
        self._add_sum_state("rougel_sum", torch.tensor(0.0, dtype=_SUM_DTYPE))
        self._add_sum_state("total", torch.tensor(0, dtype=torch.long))

    def update(self, preds: Sequence[str], targets: Sequence[str]) -> None:
        """Accumulate a batch of generated texts and references."""
        preds, targets = _checked_pairs(preds, targets)
        rouge1 = rougel = 0.0
        for pred, target in zip(preds, targets):
            pred_tokens, target_tokens = rouge_tokenize(pred), rouge_tokenize(target)
            rouge1 += _rouge1_f(target_tokens, pred_tokens)
            rougel += _rougel_f(target_tokens, pred_tokens)
        self.rouge1_sum += rouge1
        self.rougel_sum += rougel
        self.total += len(preds)

    def compute(self) -> dict[str, Tensor]:
        """Return ``{"rouge-1", "rouge-L"}``; both are 0 before any update."""
        return {
            "rouge-1": _safe_div(self.rouge1_sum, self.total),
            "rouge-L": _safe_div(self.rougel_sum, self.total),
        }


def build_metrics(kind: str, labels: Sequence[str] | None = None, **kwargs) -> Metric:
    """Create the metric collection for a LaMP task family.

    Args:
        kind: ``"classification"``, ``"regression"`` or ``"generation"``.
        labels: The label set; required for ``"classification"``, ignored otherwise.
        **kwargs: Forwarded to :class:`torchmetrics.Metric`.

    Returns:
        A fresh, un-updated metric.

    Raises:
        ValueError: If ``kind`` is unknown or classification labels are missing.
    """
    if kind == "classification":
        if not labels:
            raise ValueError("classification metrics need a non-empty label set")
        return ClassificationMetrics(labels, **kwargs)
    if kind == "regression":
        return RegressionMetrics(**kwargs)
    if kind == "generation":
        return GenerationMetrics(**kwargs)
    if kind == "multilabel":  # per-annotator subjective tasks (issue 12)
        from lamp_pl.metrics.multilabel import MultiLabelMetrics

        return MultiLabelMetrics(labels or (), **kwargs)
    if kind == "longform":  # LongLaMP and LaMP-QA (issue 22)
        from lamp_pl.metrics.longform import LongFormMetrics

        return LongFormMetrics(**kwargs)
    raise ValueError(
        f"unknown metric kind {kind!r}; expected classification, regression, generation, multilabel or longform"
    )
