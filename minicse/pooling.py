"""Poolers: token vectors ``(B, T, H)`` -> one sentence vector ``(B, H)``.

SimCSE's options (arXiv:2104.08821, sec. 6.3; ``Pooler`` in ``simcse/models.py``).
``"cls"`` and ``"cls_before_pooler"`` pool the same last-layer ``[CLS]``; the
encoder puts ``"cls"`` through SimCSE's MLP head where there is one, and
``"cls_before_pooler"`` is the raw ``[CLS]``, never given a head. The means skip
padding, so batching never changes a vector. See chapter 4.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from minicse.utils import check_choice

__all__ = [
    "POOLERS",
    "cls_pooling",
    "mean_pooling",
    "first_last_mean_pooling",
    "last2_mean_pooling",
    "pool",
    "needs_hidden_states",
    "check_head",
    "simcse_defaults",
]

MLP_MODES = (None, "train", "always")  # SimCSE's head: unsup ("train") or sup


def _check_hidden(hidden: Any, mask: Any) -> None:
    """``hidden`` is ``(B, T, H)`` and ``mask`` is ``(B, T)``."""
    if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3:
        shape = tuple(hidden.shape) if isinstance(hidden, torch.Tensor) else None
        raise ValueError(
            "hidden states must be a tensor of shape (batch, tokens, hidden), "
            f"got {type(hidden).__name__} with shape {shape}"
        )
    if not isinstance(mask, torch.Tensor) or mask.shape != hidden.shape[:2]:
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else None
        raise ValueError(
            f"attention_mask must have shape {tuple(hidden.shape[:2])} "
            f"(batch, tokens) to match the hidden states, got {shape}"
        )


def _check_layers(hidden_states: Any, needed: int) -> None:
    """``hidden_states`` is a sequence of at least ``needed`` layers."""
    if not isinstance(hidden_states, Sequence) or len(hidden_states) < needed:
        count = len(hidden_states) if isinstance(hidden_states, Sequence) else None
        raise ValueError(
            "hidden_states must be the tuple of every layer's output (embeddings at "
            f"[0]; run the model with output_hidden_states=True) with at least "
            f"{needed} entries, got {type(hidden_states).__name__} of length {count}"
        )


def cls_pooling(last_hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """The first token's vector (``[CLS]`` for BERT): ``h_0``. See chapter 4.

    ``last_hidden`` is ``(B, T, H)``; ``attention_mask`` ``(B, T)`` is checked
    for its shape only. Returns ``(B, H)``.

    Reference: Devlin et al., 2019, arXiv:1810.04805, sec. 3.
    """
    _check_hidden(last_hidden, attention_mask)
    return last_hidden[:, 0]  # (B, H)


def mean_pooling(last_hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean over real tokens: ``sum_t m_t h_t / sum_t m_t``. See chapter 4.

    ``last_hidden`` is ``(B, T, H)``, ``attention_mask`` ``(B, T)`` with 1 for real
    tokens and 0 for padding; returns ``(B, H)``.

    Reference: Reimers & Gurevych, 2019, arXiv:1908.10084, sec. 3.

    Example:
        >>> h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
        >>> mean_pooling(h, torch.tensor([[1, 1, 0]]))  # the padding is not counted
        tensor([[2., 3.]])
    """
    _check_hidden(last_hidden, attention_mask)
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)  # (B, T, 1)
    summed = (last_hidden * mask).sum(dim=1)  # (B, H)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return summed / counts


def first_last_mean_pooling(
    hidden_states: Sequence[Tensor], attention_mask: Tensor
) -> Tensor:
    """Mean over real tokens of ``(hidden_states[1] + hidden_states[-1]) / 2``.

    ``hidden_states`` holds ``L + 1`` tensors ``(B, T, H)``; layer 1 is the first
    transformer layer (``[0]``, the embeddings, is not used). Returns ``(B, H)``.
    See chapter 4.

    Reference: Su et al., 2021, arXiv:2103.15316; SimCSE's corrected
    ``avg_first_last``.
    """
    _check_layers(hidden_states, 2)
    averaged = (hidden_states[1] + hidden_states[-1]) / 2.0  # (B, T, H)
    return mean_pooling(averaged, attention_mask)


def last2_mean_pooling(
    hidden_states: Sequence[Tensor], attention_mask: Tensor
) -> Tensor:
    """Mean over real tokens of ``(hidden_states[-2] + hidden_states[-1]) / 2``.

    As :func:`first_last_mean_pooling`, over the last two layers. See chapter 4.

    Reference: Gao et al., 2021, arXiv:2104.08821 (``avg_top2`` in its code).
    """
    _check_layers(hidden_states, 3)
    averaged = (hidden_states[-2] + hidden_states[-1]) / 2.0  # (B, T, H)
    return mean_pooling(averaged, attention_mask)


_POOLING_FUNCTIONS = {
    "cls": cls_pooling,
    "cls_before_pooler": cls_pooling,
    "mean": mean_pooling,
    "first_last_mean": first_last_mean_pooling,
    "last2_mean": last2_mean_pooling,
}
POOLERS = tuple(_POOLING_FUNCTIONS)
_LAYERED = (first_last_mean_pooling, last2_mean_pooling)  # they need every layer


def needs_hidden_states(name: str) -> bool:
    """Whether pooler ``name`` needs ``output_hidden_states=True``. See chapter 4.

    Example:
        >>> needs_hidden_states("mean"), needs_hidden_states("first_last_mean")
        (False, True)
    """
    check_choice(name, "pooler", POOLERS)
    return _POOLING_FUNCTIONS[name] in _LAYERED


def pool(name: str, outputs_or_hidden: Any, attention_mask: Tensor) -> Tensor:
    """Apply pooler ``name``, one of :data:`POOLERS`. See chapter 4.

    ``outputs_or_hidden`` is a Hugging Face model output, the tuple of all hidden
    states, or a ``(B, T, H)`` tensor (last-layer poolers only); ``attention_mask``
    is ``(B, T)``. Returns ``(B, H)``.

    Example:
        >>> pool("mean", torch.ones(2, 3, 4), torch.ones(2, 3)).shape
        torch.Size([2, 4])
    """
    layered = needs_hidden_states(name)  # also rejects an unknown name
    if isinstance(outputs_or_hidden, torch.Tensor):
        layers, last = None, outputs_or_hidden
    elif isinstance(outputs_or_hidden, (tuple, list)):
        layers, last = outputs_or_hidden, outputs_or_hidden[-1]
    else:
        layers = getattr(outputs_or_hidden, "hidden_states", None)
        last = getattr(outputs_or_hidden, "last_hidden_state", None)
    if layered and layers is None:
        raise ValueError(
            f"pooler {name!r} needs every layer's hidden states; run the model "
            "with output_hidden_states=True and pass its output"
        )
    return _POOLING_FUNCTIONS[name](layers if layered else last, attention_mask)


def check_head(pooling: str, mlp: str | None) -> None:
    """Raise for a pooler/MLP pair that contradicts itself.

    SimCSE's MLP exists only with ``cls`` (``mlp="train"``: unsup, ``"always"``:
    sup); ``cls_before_pooler`` is the raw ``[CLS]``, before any head. A head on
    another pooler is not SimCSE's, but allowed when asked for.
    """
    check_choice(pooling, "pooling", POOLERS)
    check_choice(mlp, "mlp", MLP_MODES)
    if pooling == "cls_before_pooler" and mlp is not None:
        raise ValueError(
            "pooling='cls_before_pooler' is the [CLS] vector before any MLP head, so "
            f"it cannot take mlp={mlp!r}; use pooling='cls' for SimCSE's head, or "
            "mlp=None"
        )


def simcse_defaults(name: str, pooling: str, mlp: str | None) -> tuple[str, Any]:
    """``(pooling, mlp)`` with ``"auto"`` resolved by name, as SimCSE's tool does.

    The released checkpoints keep their MLP in the pooler layer:
    ``*unsup-simcse*`` -> raw ``[CLS]``; ``*sup-simcse*`` -> ``cls`` through that
    layer (``mlp="pooler"``: HF's ``pooler_output``); others -> ``cls``, no head.

    Example:
        >>> simcse_defaults("sup-simcse-bert-base-uncased", "auto", "auto")
        ('cls', 'pooler')
        >>> simcse_defaults("unsup-simcse-roberta-large", "auto", "auto")
        ('cls_before_pooler', None)
    """
    base = Path(name).name.lower()
    if pooling == "auto":
        pooling = "cls_before_pooler" if "unsup-simcse" in base else "cls"
    if mlp == "auto":
        mlp = "pooler" if "sup-simcse" in base and pooling == "cls" else None
    return pooling, mlp
