"""`load_pretrained`: `from_pretrained`, one call at a time per process.

While `from_pretrained` builds a model, transformers replaces the class attribute
`PreTrainedModel.tie_weights` with a no-op and puts the saved one back afterwards
(`transformers.initialization.no_tie_weights`). Two threads loading at once (the thread "ranks"
of a sharded index build, each with its own encoder) interleave those swaps: the second saves the
first's no-op and restores it last, so weight tying stays off for the rest of the process, and
every later model whose checkpoint stores tied weights once (T5's shared word embeddings) keeps
its copies on the meta device. Every `from_pretrained` of lamp_pl goes through this lock.
"""

from __future__ import annotations

import threading
from typing import Any

_LOADING = threading.Lock()


def load_pretrained(auto_class: Any, name_or_path: str, **kwargs: Any) -> Any:
    """`auto_class.from_pretrained(name_or_path, **kwargs)`, serialized within the process.

    Args:
        auto_class: A transformers model class or auto class (e.g. `AutoModel`).
        name_or_path: A hub name or a model folder.
        **kwargs: Passed to `from_pretrained`.

    Returns:
        The loaded model.
    """
    with _LOADING:
        return auto_class.from_pretrained(name_or_path, **kwargs)


__all__ = ["load_pretrained"]
