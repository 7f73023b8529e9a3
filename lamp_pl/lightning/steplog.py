"""When a training step's loss must go through `self.log`: the steps whose value someone reads.

Lightning's `self.log` costs about a millisecond a call on CPU (a result-collection update, a
metric's forward, device checks), paid on every step although the loggers write only every
`log_every_n_steps`-th step. The loss is read on every step only by a progress bar (it shows
the latest value) and by a callback that monitors a ``train/`` metric (checkpointing or early
stopping on the training loss); otherwise only the steps whose metrics reach the loggers read it.
So `LaMPModel` logs the loss in `training_step` when it is read every step, and otherwise keeps it
and logs it in `on_train_batch_end` on the steps the loggers write (`should_update_logs`, known
there: that hook runs after the callbacks' and before Lightning sends the step's metrics). The
loggers receive the same values at the same steps either way.
"""

from __future__ import annotations

from typing import Any


def loss_read_every_step(trainer: Any) -> bool:
    """Whether something reads the logged training loss on every step of this trainer's fit."""
    if getattr(trainer, "progress_bar_callback", None) is not None:
        return True
    return any(str(getattr(callback, "monitor", None) or "").startswith("train/") for callback in trainer.callbacks)


def loss_reaches_loggers(trainer: Any) -> bool:
    """Whether this step's logged metrics will be sent to the loggers (checked after the step)."""
    return bool(trainer._logger_connector.should_update_logs or trainer.fast_dev_run)
