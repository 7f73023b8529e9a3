"""Per-user LoRA adapters over one shared frozen base (the PEFT study of personalization).

`fit_users` trains and stores one adapter per user; `test_users` evaluates every question with its
own user's adapter, alone or together with retrieval.
"""

from lamp_pl.adapters.evaluate import test_users
from lamp_pl.adapters.fit import fit_users

__all__ = ["fit_users", "test_users"]
