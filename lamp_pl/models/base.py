"""What the three families share: building a network from a hub name or a random config, and the
check that the data's tokenizer fits the model's vocabulary."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from lamp_pl.errors import ConfigError, LaMPError
from lamp_pl.models.pretrained import load_pretrained
from lamp_pl.tasks import Task


def check_vocabulary(model: torch.nn.Module, tokenizer: Any, model_name: str) -> None:
    """Fail at start when the tokenizer can emit ids the model has no embedding row for.

    Such ids index past the embedding matrix (an error on GPU only when it is too late, or
    silently wrong rows with some kernels), so a mismatched `data.tokenizer` must stop the run.
    """
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ConfigError(
            f"data.tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has {len(tokenizer)} tokens but model "
            f"{model_name!r} has only {rows} embedding rows: use the model's own tokenizer as data.tokenizer"
        )


def check_attn_implementation(attn_implementation: str | None) -> None:
    """Refuse an attention implementation transformers does not know, before any data or weights load.

    Whether the model supports a known one (T5 has no FlashAttention) is transformers' check when
    the weights load (`attention_errors`).
    """
    if attn_implementation is None:
        return
    try:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, is_kernel
    except ImportError:  # another transformers layout: its own check when the model loads
        return
    known = ["eager", *ALL_ATTENTION_FUNCTIONS.valid_keys()]
    # "paged|sdpa" and the like: transformers drops the prefix; a hub kernel is "org/repo".
    if attn_implementation.removeprefix("paged|") in known or is_kernel(attn_implementation):
        return
    raise ConfigError(
        f"model.attn_implementation: {attn_implementation!r} is not an attention implementation of "
        f"transformers; choose one of {known}, a hub kernel (org/repo) or null (transformers' default)"
    )


@contextlib.contextmanager
def attention_errors(attn_implementation: str | None) -> Iterator[None]:
    """transformers' refusal of the requested attention (e.g. FlashAttention on T5, or without a
    GPU) as a one-line `ConfigError` naming `model.attn_implementation`, its message kept."""
    try:
        yield
    except (ValueError, ImportError) as error:
        about_attention = re.search(r"attn|attention", str(error), flags=re.IGNORECASE) is not None
        if attn_implementation is None or isinstance(error, LaMPError) or not about_attention:
            raise
        raise ConfigError(f"model.attn_implementation {attn_implementation!r}: {error}") from error


@dataclass
class FamilyBase:
    """Build settings common to every family; subclasses add the loss and generation."""

    model_name_or_path: str
    tokenizer: Any
    task: Task
    random_init: dict[str, Any] | None = None
    trust_remote_code: bool = False
    attn_implementation: str | None = None
    """transformers' attention implementation (`eager`, `sdpa`, `flash_attention_2`, ...), passed to
    `from_pretrained` / `from_config`; None leaves transformers' default."""
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra `from_pretrained` arguments (quantization config, device map)."""
    num_beams: int = 1
    max_new_tokens: int = 128
    chat_template: bool = False

    auto_class_name: ClassVar[str] = ""
    default_model_type: ClassVar[str] = ""
    """`model_type` of a randomly initialised network when `random_init` names none."""

    def __post_init__(self) -> None:
        """Subclasses validate the task here (the generated `__init__` calls it)."""

    def config_overrides(self) -> dict[str, Any]:
        """Config fields this family sets on every network (e.g. the classifier's label set)."""
        return {}

    def token_ids(self) -> dict[str, Any]:
        tok = self.tokenizer
        return {"pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id}

    def build(self) -> torch.nn.Module:
        import transformers

        auto = getattr(transformers, self.auto_class_name)
        attention = {} if self.attn_implementation is None else {"attn_implementation": self.attn_implementation}
        if self.random_init is None:
            with attention_errors(self.attn_implementation):
                model = load_pretrained(
                    auto,
                    self.model_name_or_path,
                    trust_remote_code=self.trust_remote_code,
                    **attention,
                    **self.config_overrides(),
                    **self.load_kwargs,
                )
        else:
            fields = dict(self.random_init)
            model_type = fields.pop("model_type", self.default_model_type)
            config = transformers.AutoConfig.for_model(
                model_type,
                **{"vocab_size": len(self.tokenizer), **self.token_ids(), **self.config_overrides(), **fields},
            )
            with attention_errors(self.attn_implementation):
                model = auto.from_config(config, **attention)
        untied = [name for name, parameter in model.named_parameters() if parameter.is_meta]
        if untied:
            raise RuntimeError(
                f"{self.model_name_or_path}: weights {untied[:5]} were not loaded (left on the meta device)"
            )
        check_vocabulary(model, self.tokenizer, self.model_name_or_path)
        # from_pretrained returns eval mode; Lightning no longer forces train mode on submodules.
        return model.train()

    def replace(self, **changes: Any) -> FamilyBase:
        return dataclasses.replace(self, **changes)


def strip_labels(labels: torch.Tensor) -> list[list[int]]:
    """The target ids of each row of a `labels` batch (padding -100 removed)."""
    # One copy to Python ints (one device sync), not a 0-d tensor comparison per element.
    return [[t for t in row if t != -100] for row in labels.tolist()]


def pad_rows(rows: list[list[int]], value: int, left: bool = False) -> torch.Tensor:
    """Pad id lists to one width, on the right (training) or on the left (generation)."""
    width = max((len(r) for r in rows), default=0)
    # Padded as Python lists and made one tensor at once (a tensor per row costs more than the copy).
    padded = [[value] * (width - len(r)) + r if left else r + [value] * (width - len(r)) for r in rows]
    return torch.tensor(padded, dtype=torch.long).reshape(len(rows), width)
