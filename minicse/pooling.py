"""Poolers: token vectors ``(B, T, H)`` -> a sentence vector ``(B, H)``. See chapter 4.

SimCSE's options (arXiv:2104.08821, sec. 6.3). ``"cls"`` and ``"cls_before_pooler"``
pool the same ``[CLS]``; only ``"cls"`` may take SimCSE's MLP head. Means skip padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from minicse.utils import check_choice

# SimCSE's MLP head, on ``cls`` only: none, in training only (unsup), always (sup)
MLP_MODES = (None, "train", "always")


def _check_hidden(hidden: Any, mask: Any) -> None:
    """``hidden`` is ``(B, T, H)`` and ``mask`` is ``(B, T)``."""
    if not isinstance(hidden, Tensor) or hidden.dim() != 3:
        got = getattr(hidden, "shape", type(hidden).__name__)
        raise ValueError(f"hidden states must be (batch, tokens, hidden), got {got}")
    if not isinstance(mask, Tensor) or mask.shape != hidden.shape[:2]:
        got = getattr(mask, "shape", type(mask).__name__)
        want = tuple(hidden.shape[:2])  # (batch, tokens)
        raise ValueError(f"attention_mask must have shape {want}, got {got}")


def _check_layers(hidden_states: Any, needed: int) -> None:
    """``hidden_states`` is a sequence of at least ``needed`` layers."""
    if not isinstance(hidden_states, Sequence) or len(hidden_states) < needed:
        want = f"at least {needed} layers; run the model with output_hidden_states=True"
        raise ValueError(f"hidden_states must hold {want}")


def cls_pooling(last_hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """The first token's vector (``[CLS]`` for BERT): ``(B, T, H) -> (B, H)``.

    See chapter 4. Reference: Devlin et al., 2019, arXiv:1810.04805, sec. 3.
    """
    _check_hidden(last_hidden, attention_mask)
    return last_hidden[:, 0]  # (B, H)


def mean_pooling(last_hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean over real tokens: ``sum_t m_t h_t / sum_t m_t``. See chapter 4.

    ``(B, T, H)``, mask ``(B, T)`` (0: padding) -> ``(B, H)``. Reference: SBERT,
    Reimers & Gurevych, 2019, arXiv:1908.10084, sec. 3.

    Example:
        >>> import torch
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

    ``[1]`` is the first transformer layer (``[0]``, the embeddings, is not used).
    See chapter 4. Reference: Su et al., 2021, arXiv:2103.15316; SimCSE's
    corrected ``avg_first_last``.
    """
    _check_layers(hidden_states, 2)
    averaged = (hidden_states[1] + hidden_states[-1]) / 2.0  # (B, T, H)
    return mean_pooling(averaged, attention_mask)


def last2_mean_pooling(
    hidden_states: Sequence[Tensor], attention_mask: Tensor
) -> Tensor:
    """Mean over real tokens of ``(hidden_states[-2] + hidden_states[-1]) / 2``.

    See chapter 4. Reference: arXiv:2104.08821 (``avg_top2`` in SimCSE's code).
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


def needs_hidden_states(name: str) -> bool:
    """Whether pooler ``name`` needs every layer (``output_hidden_states=True``)."""
    check_choice(name, "pooler", POOLERS)
    return name in ("first_last_mean", "last2_mean")


def pool(name: str, outputs_or_hidden: Any, attention_mask: Tensor) -> Tensor:
    """Apply pooler ``name``, one of :data:`POOLERS`. See chapter 4.

    ``outputs_or_hidden``: a Hugging Face model output, all hidden states, or a
    ``(B, T, H)`` tensor (last-layer poolers only); mask ``(B, T)``; -> ``(B, H)``.
    """
    layered = needs_hidden_states(name)  # also rejects an unknown name
    if isinstance(outputs_or_hidden, Tensor):
        layers, last = None, outputs_or_hidden
    elif isinstance(outputs_or_hidden, (tuple, list)):
        layers, last = outputs_or_hidden, outputs_or_hidden[-1]
    else:
        layers = getattr(outputs_or_hidden, "hidden_states", None)
        last = getattr(outputs_or_hidden, "last_hidden_state", None)
    return _POOLING_FUNCTIONS[name](layers if layered else last, attention_mask)


def check_head(pooling: str, mlp: str | None) -> None:
    """Raise for a pooler/MLP pair that contradicts itself (see :data:`MLP_MODES`)."""
    check_choice(pooling, "pooling", POOLERS)
    check_choice(mlp, "mlp", MLP_MODES)
    if pooling == "cls_before_pooler" and mlp is not None:
        fix = "use pooling='cls' for SimCSE's head, or mlp=None"
        raise ValueError(f"pooling='cls_before_pooler' cannot take mlp={mlp!r}; {fix}")


def simcse_defaults(name: str, pooling: str, mlp: str | None) -> tuple[str, Any]:
    """``(pooling, mlp)`` with ``"auto"`` resolved by name, as SimCSE's tool does.

    The released checkpoints keep their MLP in the pooler layer: ``*unsup-simcse*``
    -> raw ``[CLS]``; ``*sup-simcse*`` -> ``cls`` through that layer (``"pooler"``:
    HF's ``pooler_output``); others -> ``cls``, no head. See chapter 4.
    """
    base = Path(name).name.lower()
    if pooling == "auto":
        pooling = "cls_before_pooler" if "unsup-simcse" in base else "cls"
    if mlp == "auto":
        mlp = "pooler" if "sup-simcse" in base and pooling == "cls" else None
    return pooling, mlp
