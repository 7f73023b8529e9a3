"""The Lightning shells: `LaMPModel`, `LaMPDataModule`, the optimiser, checkpoints and export.

Thin layers over the plain pieces below (`lamp_pl.pipeline`, `lamp_pl.models`): everything a
Trainer touches lives here, nothing else does.
"""
