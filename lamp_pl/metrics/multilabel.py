"""Multi-label classification as a task kind: output strings and exactly DDP-reduced metrics.

An output is the chosen labels joined in the label set's order with ``", "`` (``"anger, joy"``),
or ``"none"`` when no label is chosen. Parsing is lenient: order, case and spaces do not matter
and unknown pieces are ignored, so a generator's near-misses still score what they got right.

:class:`MultiLabelMetrics` reports, as scikit-learn would with ``zero_division=0``:

* ``f1_macro``: F1 per label over all examples, averaged over labels (the measure of the
  "Personalized LLMs" paper on GoEmotions and Unhealthy Conversations);
* ``f1_micro``: F1 of the pooled per-label counts;
* ``exact_match``: share of examples whose whole label set is right;
* ``f1_macro_user_mean``: F1-macro computed per user, averaged over users (only when
  ``update`` received ``users``).

Global states are sum-reduced counters. The per-user state is a ``"cat"`` state of rows
``(user hash, tp[L], fp[L], fn[L])`` in float64 (exact for 52-bit hashes and counts), one per
example, flattened to 1-D so that a rank without examples contributes an empty tensor; ``compute`` groups the gathered rows by user hash, so the
result is exact whatever rank saw which user.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from lamp_pl.errors import ConfigError

NONE = "none"

__all__ = ["NONE", "MultiLabelMetrics", "format_labels", "parse_labels", "user_key"]


def _canonical(text: str) -> str:
    return " ".join(text.lower().split())


def format_labels(chosen: Sequence[str] | set[str] | frozenset[str], labels: Sequence[str]) -> str:
    """The output string of a label set: labels in `labels` order joined by ``", "``, or ``"none"``.

    Raises:
        ValueError: A chosen label is not in `labels`.
    """
    unknown = set(chosen) - set(labels)
    if unknown:
        raise ConfigError(f"unknown label(s) {sorted(unknown)}; labels: {', '.join(labels)}")
    return ", ".join(label for label in labels if label in set(chosen)) or NONE


def parse_labels(text: str, labels: Sequence[str]) -> list[bool]:
    """Which of `labels` an output string names (order, case and extra spaces ignored)."""
    wanted = {_canonical(piece) for piece in str(text).split(",")}
    return [_canonical(label) in wanted for label in labels]


def user_key(user: str) -> int:
    """A stable 52-bit integer for a user id: the same in every process (unlike `hash`) and exact
    in float64, the dtype of the per-user rows."""
    return int.from_bytes(hashlib.sha256(str(user).encode()).digest()[:8], "big") >> 12


def _f1(tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
    """Elementwise F1 = 2tp / (2tp + fp + fn), 0 where undefined (sklearn's zero_division=0)."""
    num, den = (2 * tp).double(), (2 * tp + fp + fn).double()
    return torch.where(den > 0, num / den.clamp(min=1), torch.zeros_like(num))


class MultiLabelMetrics(Metric):
    """F1-macro, micro-F1, exact match and per-user mean F1-macro of multi-label outputs.

    Args:
        labels: The task's label set; its order is the output order.
        **kwargs: Forwarded to :class:`torchmetrics.Metric`.
    """

    is_differentiable = False
    full_state_update = False
    tp: Tensor
    fp: Tensor
    fn: Tensor
    exact: Tensor
    total: Tensor
    user_rows: list[Tensor]

    def __init__(self, labels: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(labels, str) or len(labels) == 0:
            raise ValueError("multilabel metrics need a non-empty label set")
        self.labels = list(labels)
        n = len(self.labels)
        for name in ("tp", "fp", "fn"):
            self.add_state(name, default=torch.zeros(n, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("exact", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("user_rows", default=[], dist_reduce_fx="cat")
        # A rank without rows sends an empty tensor of the metric's dtype: make that the rows' dtype
        # (float64 holds the 52-bit keys and the counts exactly).
        self.set_dtype(torch.float64)

    def _matrix(self, texts: Sequence[str]) -> Tensor:
        return torch.tensor(
            [parse_labels(t, self.labels) for t in texts], dtype=torch.bool, device=self.tp.device
        ).reshape(len(texts), len(self.labels))

    def update(self, preds: Sequence[str], targets: Sequence[str], users: Sequence[str] | None = None) -> None:
        """Accumulate a batch of output strings, gold strings and (optionally) their users."""
        if isinstance(preds, str) or isinstance(targets, str):
            raise TypeError("preds and targets must be sequences of strings, not a single string")
        if len(preds) != len(targets) or (users is not None and len(users) != len(preds)):
            raise ValueError(
                f"got {len(preds)} predictions, {len(targets)} targets and "
                f"{'no' if users is None else len(users)} users"
            )
        pred, gold = self._matrix(preds), self._matrix(targets)
        tp, fp, fn = (pred & gold).long(), (pred & ~gold).long(), (~pred & gold).long()
        self.tp += tp.sum(0)
        self.fp += fp.sum(0)
        self.fn += fn.sum(0)
        self.exact += (pred == gold).all(1).sum()
        self.total += len(preds)
        if users is not None and len(users):
            keys = torch.tensor([user_key(u) for u in users], dtype=torch.float64, device=self.tp.device)
            self.user_rows.append(torch.cat([keys[:, None], tp, fp, fn], 1).flatten().to(torch.float64))

    def _user_mean(self) -> Tensor | None:
        # A list before a DDP sync, one gathered tensor after it.
        state: list[Tensor] | Tensor = self.user_rows
        rows = torch.cat(state) if isinstance(state, list) and state else state
        if not isinstance(rows, Tensor) or rows.numel() == 0:
            return None
        rows = rows.reshape(-1, 1 + 3 * len(self.labels))
        keys, inverse = torch.unique(rows[:, 0], return_inverse=True)
        counts = torch.zeros(len(keys), rows.shape[1] - 1, dtype=torch.float64, device=rows.device)
        counts.index_add_(0, inverse, rows[:, 1:].to(torch.float64))
        tp, fp, fn = counts.split(len(self.labels), dim=1)
        return _f1(tp, fp, fn).mean(1).mean()

    def compute(self) -> dict[str, Tensor]:
        """Return the metrics (all 0 before any update; the user mean only when users were given)."""
        values = {
            "f1_macro": _f1(self.tp, self.fp, self.fn).mean(),
            "f1_micro": _f1(self.tp.sum(), self.fp.sum(), self.fn.sum()),
            "exact_match": self.exact.double() / self.total.clamp(min=1).double(),
        }
        user_mean = self._user_mean()
        if user_mean is not None:
            values["f1_macro_user_mean"] = user_mean
        return values
