"""A client for LLMs behind an OpenAI-compatible server (vLLM, TGI, `transformers serve`, hosted APIs).

`complete_all(settings, prompts, cache_path)` answers a mapping of question ids to prompt texts,
bounded, rate-limited, retried and cached; `ServedSettings` describes the endpoint. The generator
family of `lamp-pl validate | test | predict` (`model.family: served`) is built on it.
"""

from lamp_pl.served.cache import ResponseCache, response_key
from lamp_pl.served.client import complete_all
from lamp_pl.served.settings import Completion, ServedError, ServedSettings
from lamp_pl.served.usage import Answers, Usage

__all__ = [
    "Answers",
    "Completion",
    "ResponseCache",
    "ServedError",
    "ServedSettings",
    "Usage",
    "complete_all",
    "response_key",
]
