"""ROPG-RL: the dense retriever trained by a policy gradient on the generator's rewards.

The policy of a question is the softmax of its query-item inner products / `temperature` over the
valid candidates. A step draws `samples` ordered sets of `k` items without replacement (Gumbel
top-k, i.e. Plackett-Luce sampling), whose log-probability is the sum over positions of the
chosen item's score minus the log-sum-exp of the items not yet drawn. A set's reward is the mean
of its items' utilities (the task metric of the generator's output with that item in the prompt,
or its log-likelihood of the gold: `score_items` outputs). The baseline is the mean reward of the
question's own draws, so the advantage sums to zero per question (variance reduction); the loss
is ``-mean(advantage * log p(set))``. A rewarded item's probability therefore rises.

`RLRetrieverModule` reuses `RetrieverModule`'s encoder, batches and `save_encoder`, so the
trained folder plugs into `retrieval.encoder` exactly as ROPG-KD's does.
"""

from __future__ import annotations

from typing import Any

import torch

from lamp_pl.learned.retriever_module import RetrieverModule, ndcg, target_distribution


def sample_sets(scores: torch.Tensor, mask: torch.Tensor, k: int, samples: int, generator=None) -> torch.Tensor:
    """(questions, samples, k') candidate positions drawn without replacement from softmax(scores);
    k' = min(k, fewest valid candidates of a row) so every row draws valid items only."""
    k = max(1, min(k, int(mask.sum(-1).min())))
    logits = scores.detach().masked_fill(~mask, float("-inf")).unsqueeze(1).expand(-1, samples, -1)
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device).clamp(1e-9, 1 - 1e-9)
    gumbel = -torch.log(-torch.log(uniform))
    return torch.topk(logits + gumbel, k, dim=-1).indices


def set_log_prob(scores: torch.Tensor, mask: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
    """(questions, samples) Plackett-Luce log-probability of each ordered draw."""
    logits = scores.masked_fill(~mask, float("-inf")).unsqueeze(1).expand(-1, drawn.shape[1], -1)
    remaining = torch.ones_like(logits, dtype=torch.bool) & mask.unsqueeze(1)
    total = torch.zeros(drawn.shape[:2], device=scores.device)
    for position in range(drawn.shape[2]):
        chosen = drawn[..., position : position + 1]
        available = logits.masked_fill(~remaining, float("-inf"))
        total = total + logits.gather(-1, chosen).squeeze(-1) - torch.logsumexp(available, dim=-1)
        remaining = remaining.scatter(-1, chosen, False)
    return total


def policy_gradient_loss(
    scores: torch.Tensor, mask: torch.Tensor, rewards: torch.Tensor, k: int = 1, samples: int = 4, generator=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(REINFORCE loss with the per-question mean baseline, mean reward of the draws).

    Args:
        scores: (questions, candidates) policy logits.
        mask: valid candidates.
        rewards: (questions, candidates) each item's reward; a set's reward is its items' mean.
        k: items per drawn set (the prompt's k).
        samples: draws per question (the baseline is their mean reward).
    """
    drawn = sample_sets(scores, mask, k, samples, generator)
    expanded = rewards.unsqueeze(1).expand(-1, drawn.shape[1], -1)
    reward = expanded.gather(-1, drawn).mean(-1)
    advantage = reward - reward.mean(dim=1, keepdim=True)
    log_prob = set_log_prob(scores, mask, drawn)
    return -(advantage.detach() * log_prob).mean(), reward.mean()


class RLRetrieverModule(RetrieverModule):
    """Fine-tunes the encoder with `policy_gradient_loss` (ROPG-RL) instead of the KL (ROPG-KD)."""

    def __init__(self, encoder: str = "facebook/contriever", k: int = 1, samples: int = 4, **kwargs: Any) -> None:
        """
        Args:
            encoder: Hub name or local folder of the encoder to start from.
            k: Items per drawn set (the generator's k).
            samples: Draws per question and step (the baseline is their mean reward).
            **kwargs: `RetrieverModule` arguments (training, temperature, max_length, ...).
        """
        super().__init__(encoder, **kwargs)
        kwargs["training"] = self.settings.as_dict()  # plain values in the hyper-parameters, as the base's
        self.save_hyperparameters()
        self.k, self.samples = k, samples
        self.reward_temperature = float(kwargs.get("utility_temperature", 1.0))

    def losses(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(policy-gradient loss, mean NDCG against the reward softmax) of a batch."""
        mask = batch["mask"]
        scores = self.scores(batch)
        loss, _ = policy_gradient_loss(scores, mask, batch["utilities"], self.k, self.samples)
        target = target_distribution(batch["utilities"], mask, self.reward_temperature)
        return loss, ndcg(scores.detach(), target, mask).mean()


__all__ = ["RLRetrieverModule", "policy_gradient_loss", "sample_sets", "set_log_prob"]
