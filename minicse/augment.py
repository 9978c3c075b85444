"""Views of a sentence: SimCSE's dropout "augmentation" and discrete baselines.

:func:`dropout_views` encodes a batch twice in train mode (two dropout masks, one
positive pair); the word edits are discrete baselines like those of SimCSE's
Table 1 (arXiv:2104.08821). See chapter 5.
"""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import Tensor

from minicse.utils import check_int, check_texts

__all__ = ["dropout_views", "set_dropout", "word_deletion", "random_crop", "word_swap"]

# config fields of a dropout rate: BERT/RoBERTa/MiniLM's, then DistilBERT's and others'
_DROPOUT_FIELDS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "dropout",
    "attention_dropout",
)


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

        anchors = f(x; z),  positives = f(x; z')  (z, z' independent masks)

    The encoder's mode is used as is: in eval mode the views are identical.
    See chapter 5.

    Args:
        encoder: a :class:`minicse.encoder.SentenceEncoder`.
        batch: a list of sentences, or the dict from ``encoder.tokenize``.
        single_pass: one pass over the ``(2B, T)`` doubled batch, as SimCSE does,
            instead of two passes (the same distribution of views).

    Returns:
        ``(anchors, positives)``, each ``(B, D)`` with gradients.

    References:
        Gao, Yao & Chen, 2021, arXiv:2104.08821, sec. 3.

    Example:
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


def _words_and_rng(sentence: Any, rng: Any) -> tuple[list[str], random.Random]:
    """The words of a non-blank ``sentence``, and ``rng`` (a fresh one for None)."""
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a string, got {type(sentence).__name__}")
    if not sentence.split():
        raise ValueError(f"sentence is empty or whitespace only ({sentence!r})")
    if rng is not None and not isinstance(rng, random.Random):
        raise TypeError(
            f"rng must be a random.Random or None, got {type(rng).__name__}"
        )
    return sentence.split(), random.Random() if rng is None else rng


def _check_fraction(value: Any, name: str) -> None:
    """``value`` is a number in ``[0, 1]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def set_dropout(encoder: Any, p: float) -> Any:
    """Set every dropout rate of the transformer to ``p``; returns ``encoder``.

    Both the config fields (``hidden_dropout_prob``, ``attention_probs_dropout_prob``
    for BERT-like models) and the live ``nn.Dropout`` modules are changed, the
    attention's too, so the next forward pass uses ``p`` everywhere. ``p = 0``
    gives the paper's "no dropout" control (Table 3: 71.1 STS-B dev). See chapter 5.

    Example:
        >>> from minicse.encoder import tiny_encoder
        >>> enc = set_dropout(tiny_encoder(), 0.0)
        >>> {m.p for m in enc.modules() if isinstance(m, torch.nn.Dropout)}
        {0.0}
    """
    _check_fraction(p, "p")
    if p == 1:
        raise ValueError("p=1 would drop every unit; dropout rates lie in [0, 1)")
    model = getattr(encoder, "model", encoder)  # a SentenceEncoder or an HF model
    config = getattr(model, "config", None)
    for name in _DROPOUT_FIELDS:
        if isinstance(getattr(config, name, None), float):
            setattr(config, name, float(p))
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = float(p)
        if isinstance(getattr(module, "dropout_prob", None), float):
            module.dropout_prob = float(p)  # a fused attention's own rate
    return encoder


def word_deletion(
    sentence: str, p: float = 0.1, rng: random.Random | None = None
) -> str:
    """Drop each word with probability ``p``, keeping one if all go. See chapter 5.

    Args:
        sentence: a non-blank sentence.
        p: deletion probability in ``[0, 1]``.
        rng: a ``random.Random`` for reproducibility (default: a fresh one).

    Returns:
        The shortened sentence, words joined by single spaces.

    References:
        SimCSE Table 1 ("word deletion"); Wu et al., 2020, arXiv:2012.15466.

    Example:
        >>> word_deletion("a b c d e f", p=0.5, rng=random.Random(0))
        'a b e'
    """
    words, rng = _words_and_rng(sentence, rng)
    _check_fraction(p, "p")
    kept = [w for w in words if rng.random() >= p]
    return " ".join(kept) if kept else rng.choice(words)


def random_crop(
    sentence: str, ratio: float = 0.1, rng: random.Random | None = None
) -> str:
    """A random span of ``max(1, round((1 - ratio) * n))`` words. See chapter 5.

    Args:
        sentence: a non-blank sentence of ``n`` words.
        ratio: fraction of words cut away, in ``[0, 1]``.
        rng: a ``random.Random`` for reproducibility.

    Returns:
        The cropped sentence.

    References:
        SimCSE (arXiv:2104.08821) Table 1 ("crop k%").

    Example:
        >>> random_crop("a b c d e f g h i j", ratio=0.3, rng=random.Random(0))
        'd e f g h i j'
    """
    words, rng = _words_and_rng(sentence, rng)
    _check_fraction(ratio, "ratio")
    keep = max(1, round(len(words) * (1.0 - ratio)))
    start = rng.randint(0, len(words) - keep)
    return " ".join(words[start : start + keep])


def word_swap(sentence: str, n: int = 1, rng: random.Random | None = None) -> str:
    """Swap ``n`` random pairs of words (at two positions each). See chapter 5.

    Args:
        sentence: a non-blank sentence (one word comes back unchanged).
        n: number of swaps (int >= 0).
        rng: a ``random.Random`` for reproducibility.

    Returns:
        The sentence with words swapped.

    References:
        Wei & Zou, 2019, arXiv:1901.11196 (EDA), "random swap".

    Example:
        >>> word_swap("a b c d", n=1, rng=random.Random(0))
        'a d c b'
    """
    words, rng = _words_and_rng(sentence, rng)
    check_int(n, "n", minimum=0)
    for _ in range(n if len(words) > 1 else 0):
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    return " ".join(words)
