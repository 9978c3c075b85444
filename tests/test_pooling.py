"""Poolers: values against hand computations, padding invariance, dispatch, errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from minicse.encoder import SentenceEncoder
from minicse.pooling import (
    POOLERS,
    cls_pooling,
    first_last_mean_pooling,
    last2_mean_pooling,
    mean_pooling,
    needs_hidden_states,
    pool,
)

MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])  # (B=2, T=4)


def _layers(num: int = 4) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.randn(2, 4, 3, generator=generator) for _ in range(num))


def _loop_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Deliberately literal: average the real tokens of each row one by one."""
    rows = []
    for b in range(hidden.shape[0]):
        real = [hidden[b, t] for t in range(hidden.shape[1]) if mask[b, t] == 1]
        rows.append(sum(real) / len(real))
    return torch.stack(rows)


def test_poolers_names():
    assert POOLERS == (
        "cls",
        "cls_before_pooler",
        "mean",
        "first_last_mean",
        "last2_mean",
    )


def test_cls_pooling_takes_first_token():
    hidden = _layers()[-1]
    torch.testing.assert_close(cls_pooling(hidden, MASK), hidden[:, 0])


def test_mean_pooling_matches_loop_and_ignores_padding():
    hidden = _layers()[-1]
    expected = _loop_mean(hidden, MASK)
    torch.testing.assert_close(mean_pooling(hidden, MASK), expected)
    poisoned = hidden.clone()
    poisoned[MASK == 0] = 1e6  # garbage in pad positions must not matter
    torch.testing.assert_close(mean_pooling(poisoned, MASK), expected)


def test_first_last_mean_uses_first_transformer_layer_not_embeddings():
    layers = _layers(4)  # [0] = embeddings, [1] = first transformer layer
    expected = _loop_mean((layers[1] + layers[3]) / 2, MASK)
    torch.testing.assert_close(first_last_mean_pooling(layers, MASK), expected)
    wrong = _loop_mean((layers[0] + layers[3]) / 2, MASK)  # the original bug
    assert not torch.allclose(first_last_mean_pooling(layers, MASK), wrong)


def test_last2_mean_uses_last_two_layers():
    layers = _layers(4)
    expected = _loop_mean((layers[2] + layers[3]) / 2, MASK)
    torch.testing.assert_close(last2_mean_pooling(layers, MASK), expected)


@pytest.mark.parametrize("name", POOLERS)
def test_pool_dispatch_accepts_model_output(name):
    layers = _layers(4)
    outputs = SimpleNamespace(last_hidden_state=layers[-1], hidden_states=layers)
    from_tuple = pool(name, layers, MASK)
    torch.testing.assert_close(pool(name, outputs, MASK), from_tuple)
    assert from_tuple.shape == (2, 3)


def test_pool_tensor_input_for_last_layer_poolers():
    hidden = _layers()[-1]
    torch.testing.assert_close(pool("mean", hidden, MASK), mean_pooling(hidden, MASK))
    torch.testing.assert_close(pool("cls_before_pooler", hidden, MASK), hidden[:, 0])


def test_needs_hidden_states():
    assert [needs_hidden_states(n) for n in POOLERS] == [
        False,
        False,
        False,
        True,
        True,
    ]


def test_unknown_pooler_lists_choices():
    with pytest.raises(ValueError, match="unknown pooler 'max'.*'first_last_mean'"):
        pool("max", _layers()[-1], MASK)


def test_unknown_pooler_in_needs_hidden_states():
    with pytest.raises(ValueError, match="unknown pooler 'avg'"):
        needs_hidden_states("avg")


def test_layer_pooler_without_hidden_states():
    outputs = SimpleNamespace(last_hidden_state=_layers()[-1], hidden_states=None)
    with pytest.raises(ValueError, match="output_hidden_states=True"):
        pool("first_last_mean", outputs, MASK)


def test_layer_pooler_with_too_few_layers():
    with pytest.raises(
        ValueError, match="at least 3 layers; run the model with output_hidden_states"
    ):
        last2_mean_pooling(_layers(2), MASK)


def test_mask_shape_mismatch():
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        mean_pooling(_layers()[-1], MASK[:, :3])


def test_hidden_must_be_3d():
    with pytest.raises(ValueError, match=r"\(batch, tokens, hidden\)"):
        cls_pooling(torch.ones(2, 3), MASK)


# -- padding invariance on a real (tiny) transformer ---------------------------------

SHORT = "A cat sits on the mat."
LONG = "The quick brown fox jumps over the lazy dog " * 6


@pytest.mark.parametrize("name", POOLERS)
def test_padding_never_changes_pooled_vector(tiny, name):
    encoder = SentenceEncoder(tiny.model, tiny.tokenizer, pooling=name)
    # fp32 explicitly: on bf16 CPUs "auto" is bf16, whose kernels round a row
    # differently in a wider batch (test_encoder.py checks the bf16 path).
    alone = encoder.encode([SHORT], precision="fp32")
    together = encoder.encode([SHORT, LONG], precision="fp32")
    torch.testing.assert_close(together[:1], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", POOLERS)
def test_appended_pad_tokens_do_not_change_vector(tiny, name):
    encoder = SentenceEncoder(tiny.model, tiny.tokenizer, pooling=name).eval()
    batch = encoder.tokenize([SHORT])
    pad = torch.full((1, 20), tiny.tokenizer.pad_token_id)
    padded = {
        "input_ids": torch.cat([batch["input_ids"], pad], dim=1),
        "attention_mask": torch.cat([batch["attention_mask"], pad * 0], dim=1),
        "token_type_ids": torch.cat([batch["token_type_ids"], pad * 0], dim=1),
    }
    with torch.no_grad():
        torch.testing.assert_close(
            encoder(**padded), encoder(**batch), atol=1e-5, rtol=1e-5
        )
