"""Dropout views and the discrete augmentation baselines."""

from __future__ import annotations

import random

import pytest
import torch

from minicse.augment import dropout_views, random_crop, word_deletion

SENTENCES = [
    "A man is playing a guitar.",
    "Two dogs run through the snow.",
    "The stock market fell sharply today.",
    "A woman slices an onion.",
]
LONG = "the quick brown fox jumps over the lazy dog near the old river bank"


# -- dropout views -----------------------------------------------------------------


def test_dropout_views_differ_in_train_mode(tiny):
    tiny.train()
    try:
        anchors, positives = dropout_views(tiny, SENTENCES)
    finally:
        tiny.eval()
    assert anchors.shape == positives.shape == (len(SENTENCES), tiny.hidden_size)
    assert anchors.requires_grad
    assert not torch.allclose(anchors, positives, atol=1e-4)
    cosine = torch.nn.functional.cosine_similarity(anchors, positives)
    assert bool((cosine > 0.5).all())  # still views of the same sentence


def test_dropout_views_identical_in_eval_mode(tiny):
    tiny.eval()
    anchors, positives = dropout_views(tiny, SENTENCES)
    torch.testing.assert_close(anchors, positives)


def test_dropout_views_rejects_incomplete_batch(tiny):
    with pytest.raises(ValueError, match="missing \\['attention_mask'\\]"):
        dropout_views(tiny, {"input_ids": torch.ones(2, 3, dtype=torch.long)})


def test_dropout_views_rejects_bare_string(tiny):
    with pytest.raises(TypeError, match="wrap it in a list"):
        dropout_views(tiny, "one sentence")


# -- discrete baselines ------------------------------------------------------------

AUGMENTERS = [
    (word_deletion, {"p": 0.3}),
    (random_crop, {"ratio": 0.3}),
]


@pytest.mark.parametrize(("fn", "kwargs"), AUGMENTERS)
def test_deterministic_given_rng(fn, kwargs):
    first = [fn(LONG, rng=random.Random(7), **kwargs) for _ in range(3)]
    assert len(set(first)) == 1
    outputs = {fn(LONG, rng=random.Random(seed), **kwargs) for seed in range(20)}
    assert len(outputs) > 1  # the rng actually matters


@pytest.mark.parametrize(("fn", "kwargs"), AUGMENTERS)
def test_never_empty(fn, kwargs):
    for seed in range(50):
        for sentence in ("word", "two words", LONG):
            assert fn(sentence, rng=random.Random(seed), **kwargs).strip()


def test_word_deletion_keeps_order_subsequence():
    words = LONG.split()
    out = word_deletion(LONG, p=0.5, rng=random.Random(1)).split()
    it = iter(words)
    assert all(w in it for w in out) and len(out) < len(words)


def test_word_deletion_extremes():
    assert word_deletion(LONG, p=0.0, rng=random.Random(0)) == LONG
    assert word_deletion(LONG, p=1.0, rng=random.Random(0)) in LONG.split()


def test_random_crop_is_contiguous_span_of_right_length():
    words = LONG.split()  # 14 words
    out = random_crop(LONG, ratio=0.3, rng=random.Random(3)).split()
    assert len(out) == round(14 * 0.7)
    starts = [i for i in range(len(words)) if words[i : i + len(out)] == out]
    assert starts


def test_random_crop_extremes():
    assert random_crop(LONG, ratio=0.0) == LONG
    assert len(random_crop(LONG, ratio=1.0, rng=random.Random(0)).split()) == 1


@pytest.mark.parametrize("fn", [word_deletion, random_crop])
def test_rejects_empty_sentence(fn):
    with pytest.raises(ValueError, match="sentence is empty or whitespace only"):
        fn("   ")


@pytest.mark.parametrize("fn", [word_deletion, random_crop])
def test_rejects_non_string(fn):
    with pytest.raises(TypeError, match="sentence must be a string, got list"):
        fn(["a", "b"])


@pytest.mark.parametrize("fn", [word_deletion, random_crop])
def test_rejects_bad_rng(fn):
    with pytest.raises(TypeError, match="rng must be a random.Random or None"):
        fn(LONG, rng=0)


def test_word_deletion_rejects_bad_p():
    with pytest.raises(ValueError, match=r"p must be .* in \[0, 1\], got 1.5"):
        word_deletion(LONG, p=1.5)


def test_random_crop_rejects_bad_ratio():
    with pytest.raises(ValueError, match=r"ratio must be .* in \[0, 1\], got -0.1"):
        random_crop(LONG, ratio=-0.1)


def test_set_dropout_sets_every_rate_and_p0_makes_the_views_equal():
    from minicse import set_dropout, tiny_encoder

    encoder = set_dropout(tiny_encoder(mlp="train"), 0.0)
    assert {m.p for m in encoder.modules() if isinstance(m, torch.nn.Dropout)} == {0.0}
    assert encoder.model.config.attention_probs_dropout_prob == 0.0
    a, b = dropout_views(encoder.train(), ["a cat sits", "dogs bark loudly"])
    torch.testing.assert_close(a, b)  # no dropout: the two "views" are one
    set_dropout(encoder, 0.3)
    assert {m.p for m in encoder.modules() if isinstance(m, torch.nn.Dropout)} == {0.3}
    a, b = dropout_views(encoder.train(), ["a cat sits", "dogs bark loudly"])
    assert not torch.allclose(a, b)
    for bad, error in [(1.0, ValueError), (-0.5, ValueError), ("0.1", TypeError)]:
        with pytest.raises(error, match="p"):
            set_dropout(encoder, bad)
