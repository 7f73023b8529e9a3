"""The plain data pipeline: reading, retrieval, prompts and tokenizing composed into batches.

`data.py` holds `LaMPData` (no Lightning; `lamp_pl.lightning.LaMPDataModule` is its shell);
`tokenized.py` the tokenized splits cached on disk; `batching.py` the collate function and
length-sorted sampling; `sharding.py` and `collective.py` what DDP ranks share.
"""
