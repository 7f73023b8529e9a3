"""LaMPModel moves a LaMP batch's tensors itself and leaves its text fields untouched."""

from __future__ import annotations

import warnings

import torch

from lamp_pl.lightning.module import LaMPModel


class _Recorder(LaMPModel):
    """A LaMPModel with no network: only the batch transfer is exercised."""

    def __init__(self) -> None:  # noqa: D107 - skips LaMPModel's network and tokenizer set-up
        torch.nn.Module.__init__(self)
        self.defaulted = 0

    def _default(self, batch, device, dataloader_idx):
        self.defaulted += 1
        return batch


def test_a_lamp_batch_moves_its_tensors_and_keeps_its_lists(monkeypatch) -> None:
    model = _Recorder()
    monkeypatch.setattr(
        "lightning.pytorch.LightningModule.transfer_batch_to_device",
        lambda self, batch, device, idx: _Recorder._default(self, batch, device, idx),
    )
    retrieved = [[{"id": "1-0", "text": "a"}], [{"id": "2-0", "text": "b"}]]
    batch = {
        "input_ids": torch.ones(2, 3, dtype=torch.long),
        "attention_mask": torch.ones(2, 3, dtype=torch.long),
        "ids": ["1", "2"],
        "targets": ["x", "y"],
        "retrieved": retrieved,
    }
    moved = model.transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert moved["input_ids"].device.type == "meta" and moved["attention_mask"].device.type == "meta"
    assert moved["retrieved"] is retrieved and moved["ids"] is batch["ids"] and model.defaulted == 0

    nested = {"input_ids": torch.ones(1, 1), "extra": [torch.zeros(1)]}  # not a LaMP batch: Lightning's walk
    assert model.transfer_batch_to_device(nested, torch.device("meta"), 0) is nested and model.defaulted == 1
    assert model.transfer_batch_to_device([torch.ones(1)], torch.device("meta"), 0) and model.defaulted == 2


def test_lightnings_notice_of_the_override_is_filtered(tiny_t5) -> None:
    notice = (
        "You have overridden `transfer_batch_to_device` in `LightningModule` but have passed in a"
        " `LightningDataModule`. It will use the implementation from `LightningModule` instance."
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LaMPModel(model_name_or_path=str(tiny_t5), task="LaMP_2")  # installs the filter
        warnings.warn(notice, stacklevel=1)
    assert not [w for w in caught if "transfer_batch_to_device" in str(w.message)]
