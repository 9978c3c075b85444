"""Views of a sentence: SimCSE's dropout "augmentation" and discrete baselines.

Unsupervised SimCSE feeds the *same* sentence through the encoder twice in train
mode; the two dropout masks make two slightly different embeddings, a positive
pair. :func:`dropout_views` names that step. The discrete edits below are the
baselines the paper compares it against (Table 1: crop, word deletion, ...).
See chapter 5.

References:
    Gao, Yao & Chen 2021, "SimCSE" (arXiv:2104.08821), section 3, Table 1.
"""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import Tensor

from minicse.utils import check_int, check_texts

__all__ = ["dropout_views", "word_deletion", "random_crop", "word_swap"]


def _as_batch(encoder: Any, batch: Any) -> dict[str, Tensor]:
    """Tokenize a list of sentences, or check a tokenized dict; move to device."""
    if isinstance(batch, dict):
        missing = {"input_ids", "attention_mask"} - set(batch)
        if missing:
            raise ValueError(
                "batch must hold input_ids and attention_mask (as returned by "
                f"encoder.tokenize), missing {sorted(missing)}"
            )
    else:
        batch = encoder.tokenize(check_texts(batch, "batch"))
    return {k: v.to(encoder.device) for k, v in batch.items()}


def dropout_views(
    encoder: torch.nn.Module, batch: Any, single_pass: bool = False
) -> tuple[Tensor, Tensor]:
    """Two embeddings of each sentence that differ only by their dropout masks.

    ``anchors = f(x; z)``, ``positives = f(x; z')`` with ``z, z'`` independent
    dropout masks. In train mode the views differ; in eval mode (dropout off)
    they are identical. The current mode is used as is.

    Two equivalent ways (same distribution: every row draws its own masks):

    * ``single_pass=False``: two forward passes over the batch (the literal recipe).
    * ``single_pass=True``: one forward pass over the batch concatenated with
      itself, ``(2B, T)``, split in halves -- what the official code and
      ``minicse.train`` do: one bigger matrix multiply instead of two.

    Args:
        encoder: a :class:`minicse.encoder.SentenceEncoder`.
        batch: a list of sentences, or the dict from ``encoder.tokenize``.
        single_pass: use the concatenated pass.

    Returns:
        ``(anchors, positives)``, each ``(B, D)`` with gradients.

    Example:
        >>> import torch
        >>> from minicse.encoder import tiny_encoder
        >>> enc = tiny_encoder().train()
        >>> a, p = dropout_views(enc, ["a cat sits", "dogs bark"])
        >>> a.shape, bool(torch.allclose(a, p))
        (torch.Size([2, 64]), False)
    """
    batch = _as_batch(encoder, batch)
    if not single_pass:
        return encoder(**batch), encoder(**batch)
    doubled = {k: torch.cat([v, v]) for k, v in batch.items()}  # (2B, T)
    embeddings = encoder(**doubled)  # (2B, D)
    size = batch["input_ids"].shape[0]
    return embeddings[:size], embeddings[size:]


def _words(sentence: Any) -> list[str]:
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a string, got {type(sentence).__name__}")
    words = sentence.split()
    if not words:
        raise ValueError(f"sentence is empty or whitespace only ({sentence!r})")
    return words


def _rng(rng: Any) -> random.Random:
    if rng is None:
        return random.Random()
    if not isinstance(rng, random.Random):
        raise TypeError(
            f"rng must be a random.Random or None, got {type(rng).__name__}"
        )
    return rng


def _check_fraction(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def word_deletion(
    sentence: str, p: float = 0.1, rng: random.Random | None = None
) -> str:
    """Drop each whitespace-separated word with probability ``p``.

    Never returns an empty string: if every word was dropped, one random word is
    kept.

    Args:
        sentence: a non-empty sentence.
        p: deletion probability in ``[0, 1]``.
        rng: a ``random.Random`` for reproducibility (default: a fresh one).

    Returns:
        The shortened sentence, words joined by single spaces.

    References:
        SimCSE Table 1 ("word deletion"); Wu et al. 2020 (CLEAR, arXiv:2012.15466).

    Example:
        >>> import random
        >>> word_deletion("a b c d e f", p=0.5, rng=random.Random(0))
        'a b e'
    """
    words = _words(sentence)
    _check_fraction(p, "p")
    rng = _rng(rng)
    kept = [w for w in words if rng.random() >= p]
    return " ".join(kept) if kept else rng.choice(words)


def random_crop(
    sentence: str, ratio: float = 0.1, rng: random.Random | None = None
) -> str:
    """Keep a random contiguous span of ``round((1 - ratio) * n)`` words (at least 1).

    Args:
        sentence: a non-empty sentence of ``n`` words.
        ratio: fraction of words cut away, in ``[0, 1]``.
        rng: a ``random.Random`` for reproducibility.

    Returns:
        The cropped sentence.

    References:
        SimCSE Table 1 ("crop k%").

    Example:
        >>> import random
        >>> random_crop("a b c d e f g h i j", ratio=0.3, rng=random.Random(0))
        'd e f g h i j'
    """
    words = _words(sentence)
    _check_fraction(ratio, "ratio")
    rng = _rng(rng)
    keep = max(1, round(len(words) * (1.0 - ratio)))
    start = rng.randint(0, len(words) - keep)
    return " ".join(words[start : start + keep])


def word_swap(sentence: str, n: int = 1, rng: random.Random | None = None) -> str:
    """Swap ``n`` random pairs of words (two different positions each time).

    Sentences of one word come back unchanged.

    Args:
        sentence: a non-empty sentence.
        n: number of swaps (int >= 0).
        rng: a ``random.Random`` for reproducibility.

    Returns:
        The sentence with words swapped.

    References:
        Wei & Zou 2019 (EDA, arXiv:1901.11196), "random swap".

    Example:
        >>> import random
        >>> word_swap("a b c d", n=1, rng=random.Random(0))
        'a d c b'
    """
    words = _words(sentence)
    check_int(n, "n", minimum=0)
    rng = _rng(rng)
    for _ in range(n if len(words) > 1 else 0):
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    return " ".join(words)
