"""What the data pipeline needs of a distributed strategy: three collectives, and one rule for
failures that happen on some ranks only. No torch and no Lightning: a Lightning strategy serves
as it is, and so does a small wrapper of a bare process group (see ``bench/scale.py``)."""

from __future__ import annotations

from typing import Any, Protocol

from lamp_pl.errors import OtherRankFailed


class Collective(Protocol):
    """The collectives the pipeline needs of a distributed strategy (Lightning's names)."""

    def barrier(self, name: str | None = None) -> None:
        """Wait until every rank gets here."""

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:  # noqa: A002 -- Lightning's name
        """Every rank's `decision`, and-ed (`all`) or or-ed."""

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """Rank `src`'s `obj` on every rank."""


def agree_on_failure(strategy: Collective, rank: int, error: BaseException | None) -> None:
    """A collective every rank calls after work that may fail on some ranks only: if any rank
    failed, every rank raises (the failed one its own error, the others one naming rank 0's),
    instead of the healthy ranks waiting forever at the next barrier."""
    failed = strategy.reduce_boolean_decision(error is not None, all=False)
    message = strategy.broadcast(f"{type(error).__name__}: {error}" if error is not None else None, src=0)
    if error is not None:
        raise error
    if failed:
        raise OtherRankFailed(
            f"rank {rank}: data preparation failed on another rank" + (f" (rank 0: {message})" if message else "")
        )


__all__ = ["Collective", "agree_on_failure"]
