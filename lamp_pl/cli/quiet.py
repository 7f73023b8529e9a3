"""The one place where third-party notices are silenced (imported by the training commands).

Each filter names the notice it drops and why it is not ours to fix. The default logger (the other
source of noise: Lightning's "tensorboardX has been removed" warning) is fixed at its source in
`lamp_pl.cli.train`, which passes a CSVLogger instead of `logger=True`.
"""

from __future__ import annotations

import logging
import warnings

# Advertisements for Lightning's cloud products, logged on every fit (not actionable).
VENDOR_TIPS = ("💡 Tip:",)
# Lightning's own use of a torch API that torch has deprecated; fixed upstream, harmless here.
DEPRECATIONS = (r".*isinstance\(treespec, LeafSpec\).*",)
# `test --ckpt_path best` in a new process: the loop's ModelCheckpoint has a new version folder, so
# Lightning will not reload the best score into it. An evaluation writes no checkpoint: not ours to act on.
EVALUATION_NOTICES = (r"The dirpath has changed from",)


class _DropVendorTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(VENDOR_TIPS)


def silence_evaluation_notices() -> None:
    """For validate / test / predict only (a resumed `fit` keeps the dirpath warning)."""
    for message in EVALUATION_NOTICES:
        warnings.filterwarnings("ignore", message=message)


def silence_third_party_notices() -> None:
    """Install the filters (idempotent)."""
    for message in DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message)
    # rank_zero_info logs through these loggers (a logger's filter applies to its own records only).
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _DropVendorTips) for f in target.filters):
            target.addFilter(_DropVendorTips())
