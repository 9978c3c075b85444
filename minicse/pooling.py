"""Poolers: turn token vectors ``(B, T, H)`` into one sentence vector ``(B, H)``.

SimCSE (Gao et al., 2021, arXiv:2104.08821, section 6.3 and the official
``simcse/models.py`` ``Pooler``) compares these options:

* ``"cls"`` / ``"cls_before_pooler"``: the last layer's ``[CLS]`` vector. Both take
  the same vector here (as SimCSE does); they differ only in whether the
  encoder's MLP head is applied on top (``"cls"`` + ``mlp``).
* ``"mean"``: average of the last layer over real (non-padding) tokens.
* ``"first_last_mean"``: average of the *first transformer layer* and the last,
  i.e. ``hidden_states[1]`` and ``hidden_states[-1]`` -- the corrected variant
  (``hidden_states[0]`` is the embedding layer's output, not a transformer layer).
* ``"last2_mean"``: average of the last two layers.

Every pooler is padding-aware: pad positions (``attention_mask == 0``) never
enter a mean, so a sentence gets the same vector alone or next to a longer one.
See chapter 4.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
]

POOLERS = ("cls", "cls_before_pooler", "mean", "first_last_mean", "last2_mean")
_HIDDEN_STATE_POOLERS = ("first_last_mean", "last2_mean")


def _check_hidden(last_hidden: Any, attention_mask: Any) -> None:
    if not isinstance(last_hidden, Tensor) or last_hidden.dim() != 3:
        shape = tuple(last_hidden.shape) if isinstance(last_hidden, Tensor) else None
        raise ValueError(
            "hidden states must be a tensor of shape (batch, tokens, hidden), "
            f"got {type(last_hidden).__name__} with shape {shape}"
        )
    if (
        not isinstance(attention_mask, Tensor)
        or attention_mask.shape != (last_hidden.shape[:2])
    ):
        shape = (
            tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else None
        )
        raise ValueError(
            f"attention_mask must have shape {tuple(last_hidden.shape[:2])} "
            f"(batch, tokens) to match the hidden states, got {shape}"
        )


def cls_pooling(last_hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """The first token's vector (``[CLS]`` for BERT): ``h_0``.

    Args:
        last_hidden: ``(B, T, H)`` last-layer token vectors.
        attention_mask: ``(B, T)``, 1 for real tokens, 0 for padding (checked
            for shape only: ``[CLS]`` is never padding with right padding).

    Returns:
        ``(B, H)`` sentence vectors.

    References:
        Devlin et al. 2019 (arXiv:1810.04805), section 3; SimCSE ``Pooler("cls")``.

    Example:
        >>> import torch
        >>> h = torch.arange(12.0).reshape(1, 3, 4)
        >>> cls_pooling(h, torch.ones(1, 3)).tolist()
        [[0.0, 1.0, 2.0, 3.0]]
    """
    _check_hidden(last_hidden, attention_mask)
    return last_hidden[:, 0]  # (B, H)


def mean_pooling(last_hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean over real tokens: ``sum_t m_t h_t / sum_t m_t``.

    Args:
        last_hidden: ``(B, T, H)`` token vectors.
        attention_mask: ``(B, T)``, 1 for real tokens, 0 for padding.

    Returns:
        ``(B, H)``; padding positions never contribute.

    References:
        Reimers & Gurevych 2019 (arXiv:1908.10084), section 3.

    Example:
        >>> import torch
        >>> h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
        >>> mean_pooling(h, torch.tensor([[1, 1, 0]])).tolist()
        [[2.0, 3.0]]
    """
    _check_hidden(last_hidden, attention_mask)
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)  # (B, T, 1)
    summed = (last_hidden * mask).sum(dim=1)  # (B, H)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return summed / counts


def _check_layers(hidden_states: Any, needed: int) -> None:
    if not isinstance(hidden_states, Sequence) or len(hidden_states) < needed:
        count = len(hidden_states) if isinstance(hidden_states, Sequence) else None
        raise ValueError(
            "hidden_states must be the tuple of every layer's output (embeddings at "
            f"[0]; run the model with output_hidden_states=True) with at least "
            f"{needed} entries, got {type(hidden_states).__name__} of length {count}"
        )


def first_last_mean_pooling(
    hidden_states: Sequence[Tensor], attention_mask: Tensor
) -> Tensor:
    """Mean over real tokens of ``(hidden_states[1] + hidden_states[-1]) / 2``.

    The corrected SimCSE ``"avg_first_last"``: layer 1 is the first transformer
    layer; ``hidden_states[0]`` (the embedding output) is *not* used.

    Args:
        hidden_states: tuple of ``L + 1`` tensors ``(B, T, H)``, embeddings at [0].
        attention_mask: ``(B, T)``, 1 for real tokens, 0 for padding.

    Returns:
        ``(B, H)`` sentence vectors.

    References:
        Su et al. 2021 (whitening, arXiv:2103.15316); SimCSE repo, ``Pooler`` fix.

    Example:
        >>> import torch
        >>> layers = tuple(torch.full((1, 2, 3), float(i)) for i in range(4))
        >>> first_last_mean_pooling(layers, torch.ones(1, 2)).tolist()
        [[2.0, 2.0, 2.0]]
    """
    _check_layers(hidden_states, 2)
    averaged = (hidden_states[1] + hidden_states[-1]) / 2.0  # (B, T, H)
    return mean_pooling(averaged, attention_mask)


def last2_mean_pooling(
    hidden_states: Sequence[Tensor], attention_mask: Tensor
) -> Tensor:
    """Mean over real tokens of ``(hidden_states[-2] + hidden_states[-1]) / 2``.

    Args:
        hidden_states: tuple of ``L + 1`` tensors ``(B, T, H)``, embeddings at [0].
        attention_mask: ``(B, T)``, 1 for real tokens, 0 for padding.

    Returns:
        ``(B, H)`` sentence vectors.

    References:
        SimCSE ``Pooler("avg_top2")`` (arXiv:2104.08821).

    Example:
        >>> import torch
        >>> layers = tuple(torch.full((1, 2, 3), float(i)) for i in range(4))
        >>> last2_mean_pooling(layers, torch.ones(1, 2)).tolist()
        [[2.5, 2.5, 2.5]]
    """
    _check_layers(hidden_states, 3)
    averaged = (hidden_states[-2] + hidden_states[-1]) / 2.0  # (B, T, H)
    return mean_pooling(averaged, attention_mask)


def needs_hidden_states(name: str) -> bool:
    """Whether pooler ``name`` needs every layer (``output_hidden_states=True``).

    Example:
        >>> needs_hidden_states("mean"), needs_hidden_states("first_last_mean")
        (False, True)
    """
    check_choice(name, "pooler", POOLERS)
    return name in _HIDDEN_STATE_POOLERS


def pool(name: str, outputs_or_hidden: Any, attention_mask: Tensor) -> Tensor:
    """Apply pooler ``name`` (one of :data:`POOLERS`).

    Args:
        name: pooler name.
        outputs_or_hidden: a Hugging Face model output (``last_hidden_state`` and,
            for the layer-mixing poolers, ``hidden_states``), a ``(B, T, H)``
            tensor (cls/mean only) or the tuple of all hidden states.
        attention_mask: ``(B, T)``.

    Returns:
        ``(B, H)`` sentence vectors.

    Raises:
        ValueError: unknown ``name`` (the message lists the choices), or the
            hidden states a layer-mixing pooler needs are missing.

    Example:
        >>> import torch
        >>> h = torch.ones(2, 3, 4)
        >>> pool("mean", h, torch.ones(2, 3)).shape
        torch.Size([2, 4])
    """
    check_choice(name, "pooler", POOLERS)
    if isinstance(outputs_or_hidden, Tensor):
        layers, last = None, outputs_or_hidden
    elif isinstance(outputs_or_hidden, (tuple, list)):
        layers, last = outputs_or_hidden, outputs_or_hidden[-1]
    else:
        layers = getattr(outputs_or_hidden, "hidden_states", None)
        last = getattr(outputs_or_hidden, "last_hidden_state", None)
    if name in _HIDDEN_STATE_POOLERS:
        if layers is None:
            raise ValueError(
                f"pooler {name!r} needs every layer's hidden states; run the model "
                "with output_hidden_states=True and pass its output"
            )
        fn = (
            first_last_mean_pooling if name == "first_last_mean" else last2_mean_pooling
        )
        return fn(layers, attention_mask)
    if name == "mean":
        return mean_pooling(last, attention_mask)
    return cls_pooling(last, attention_mask)
