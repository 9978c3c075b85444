"""Presets: names, environment override, auto choice."""

from __future__ import annotations

import pytest
import torch

from minicse.presets import PRESETS, get_preset, resolve_preset_name


def test_every_preset_is_complete():
    for name, preset in PRESETS.items():
        assert preset.name == name
        assert preset.model
        assert preset.unsup["batch_size"] > 0 and preset.sup["batch_size"] > 0


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("MINICSE_PRESET", "smoke")
    assert get_preset().model == "tiny"
    assert get_preset("cpu").model == "offline-minilm"


def test_auto_follows_cuda(monkeypatch):
    monkeypatch.delenv("MINICSE_PRESET", raising=False)
    expected = "gpu" if torch.cuda.is_available() else "cpu"
    assert resolve_preset_name() == expected
    assert resolve_preset_name("auto") == expected


def test_unknown_preset_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="unknown preset 'laptop'; choose one of"):
        get_preset("laptop")
    monkeypatch.setenv("MINICSE_PRESET", "fast")
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        get_preset()


def test_gpu_preset_budget_and_batch_512_through_grad_cache():
    from minicse import TrainConfig

    unsup = TrainConfig.from_preset("gpu", "unsup")
    assert (unsup.batch_size, unsup.max_steps, unsup.learning_rate) == (64, 3_500, 3e-5)
    full = TrainConfig.from_preset("gpu", "unsup", max_steps=None)
    assert full.max_steps is None and full.num_epochs == 1  # the paper's full epoch
    sup = TrainConfig.from_preset("gpu", "sup")
    assert (sup.batch_size, sup.grad_cache_chunk, sup.num_epochs) == (512, 128, 3)
