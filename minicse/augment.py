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

from .utils import check_number, check_texts

# config fields of a dropout rate: BERT/RoBERTa/MiniLM's, then DistilBERT's and others'
_DROPOUT_FIELDS = (
    "hidden_dropout_prob attention_probs_dropout_prob dropout attention_dropout"
)


def dropout_views(encoder: torch.nn.Module, batch: Any) -> tuple[Tensor, Tensor]:
    """Two embeddings of each sentence that differ only by their dropout masks.

        anchors = f(x; z),  positives = f(x; z')  (z, z' independent masks)

    ``batch``: ``B`` sentences or ``encoder.tokenize``'s dict; both views are
    ``(B, D)``, with gradients (identical in eval mode). See chapter 5.
    Reference: Gao, Yao & Chen, 2021, arXiv:2104.08821, sec. 3.
    """
    if isinstance(batch, dict):
        missing = {"input_ids", "attention_mask"} - set(batch)
        if missing:
            raise ValueError(f"batch missing {sorted(missing)}: use encoder.tokenize")
    else:
        batch = encoder.tokenize(check_texts(batch, "batch"))
    batch = {k: v.to(encoder.device) for k, v in batch.items()}
    return encoder(**batch), encoder(**batch)


def _words_and_rng(sentence: Any, rng: Any) -> tuple[list[str], random.Random]:
    """The words of a non-blank ``sentence``, and ``rng`` (a fresh one for None)."""
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a string, got {type(sentence).__name__}")
    if not sentence.split():
        raise ValueError(f"sentence is empty or whitespace only ({sentence!r})")
    if rng is not None and not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random or None, got {rng!r:.40}")
    return sentence.split(), random.Random() if rng is None else rng


def set_dropout(encoder: Any, p: float) -> Any:
    """Set every dropout rate of the transformer to ``p`` in ``[0, 1)``; returns
    ``encoder``. The config fields and the live ``nn.Dropout`` modules (the
    attention's too) change, so the next forward uses ``p`` everywhere. ``p = 0``
    is SimCSE's "no dropout" control (Table 3, arXiv:2104.08821). See chapter 5.
    """
    check_number(p, "p", "in [0, 1]")
    if p == 1:
        raise ValueError("p=1 would drop every unit; dropout rates lie in [0, 1)")
    model = getattr(encoder, "model", encoder)  # a SentenceEncoder or an HF model
    config = getattr(model, "config", None)
    for name in _DROPOUT_FIELDS.split():
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
    """Drop each word with probability ``p`` in ``[0, 1]``, keeping one if all go.

    ``rng`` (a ``random.Random``, fresh when ``None``) makes it repeatable. See
    chapter 5. Reference: SimCSE Table 1; Wu et al., 2020, arXiv:2012.15466.
    """
    words, rng = _words_and_rng(sentence, rng)
    check_number(p, "p", "in [0, 1]")
    kept = [w for w in words if rng.random() >= p]
    return " ".join(kept) if kept else rng.choice(words)


def random_crop(
    sentence: str, ratio: float = 0.1, rng: random.Random | None = None
) -> str:
    """A random span of ``max(1, round((1 - ratio) * n))`` of ``n`` words.

    ``ratio``, the fraction cut away, lies in ``[0, 1]``; ``rng`` as in
    :func:`word_deletion`. See chapter 5. Reference: SimCSE Table 1 ("crop k%").
    """
    words, rng = _words_and_rng(sentence, rng)
    check_number(ratio, "ratio", "in [0, 1]")
    keep = max(1, round(len(words) * (1.0 - ratio)))
    start = rng.randint(0, len(words) - keep)
    return " ".join(words[start : start + keep])
