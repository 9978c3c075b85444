"""Presets: one notebook or script, three sizes of run.

``smoke`` (CI: a tiny random BERT, the first rows of each file, seconds), ``cpu``
(a laptop: the offline all-MiniLM-L6-v2, data subsets, minutes) and ``gpu``
(bert-base-uncased on wiki1m and all NLI: the SimCSE paper's setup, Gao et al.,
2021, arXiv:2104.08821, appendix A; unsup stops at 3,500 of the epoch's 15,625
steps, about 20 minutes on a T4, and sup reaches batch 512 through GradCache).
``$MINICSE_PRESET`` picks one; ``auto`` means ``gpu`` with CUDA, else ``cpu``.
See chapter 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .utils import check_choice, env_flag

__all__ = ["Preset", "PRESETS", "get_preset", "resolve_preset_name"]


@dataclass(frozen=True)
class Preset:
    """Sizes of a run; ``None`` in a ``*_rows`` field means "all rows"."""

    name: str  # "smoke", "cpu" or "gpu"
    model: str  # for from_pretrained: "tiny", "offline-minilm" or a hub name
    corpus_rows: int | None  # sentences of the unsupervised corpus to train on
    triplet_rows: int | None  # NLI triplets to train on
    sts_rows: int | None  # rows of each STS file used in evaluation
    unsup: dict[str, Any] = field(default_factory=dict)  # TrainConfig.unsup(**unsup)
    sup: dict[str, Any] = field(default_factory=dict)  # TrainConfig.sup(**sup)


PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        name="smoke",
        model="tiny",
        corpus_rows=640,
        triplet_rows=320,
        sts_rows=200,
        unsup=dict(batch_size=32, max_steps=20, eval_steps=10, learning_rate=3e-4),
        sup=dict(batch_size=32, max_steps=10, eval_steps=5, learning_rate=3e-4),
    ),
    "cpu": Preset(
        name="cpu",
        model="offline-minilm",
        corpus_rows=12_800,  # 200 steps of batch 64
        triplet_rows=None,  # all 5,881 SNLI dev/test triplets in MINICSE_DATA
        sts_rows=None,
        unsup=dict(batch_size=64, max_steps=200, eval_steps=50),
        sup=dict(batch_size=64, num_epochs=1, eval_steps=15),
    ),
    "gpu": Preset(
        name="gpu",
        model="bert-base-uncased",  # the paper's main encoder
        corpus_rows=None,  # all of wiki1m
        triplet_rows=None,  # all 275,601 SNLI+MNLI triplets from the hub
        sts_rows=None,
        # About 20 minutes on Colab's T4 (chapter 6's estimate); max_steps=None
        # trains the paper's full epoch of 15,625 steps.
        unsup=dict(batch_size=64, max_steps=3_500, eval_steps=125),
        # Batch 512 in a 16 GB GPU: GradCache, 128 rows at a time (same gradients).
        sup=dict(batch_size=512, num_epochs=3, eval_steps=125, grad_cache_chunk=128),
    ),
}


def resolve_preset_name(name: str | None = None) -> str:
    """The preset to use: ``name``, else ``$MINICSE_PRESET``, else ``"auto"``.

    Args:
        name: ``"smoke"``, ``"cpu"``, ``"gpu"``, ``"auto"`` (CUDA: gpu, else cpu).

    Returns:
        ``"smoke"``, ``"cpu"`` or ``"gpu"``. See chapter 1.

    Example:
        >>> resolve_preset_name("smoke")
        'smoke'
    """
    name = name if name is not None else env_flag("MINICSE_PRESET") or "auto"
    check_choice(name, "preset", ("auto", *PRESETS))
    if name == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return name


def get_preset(name: str | None = None) -> Preset:
    """The :class:`Preset` called ``name`` (None: ``$MINICSE_PRESET``, else auto).

    Args:
        name: as for ``resolve_preset_name``.

    Returns:
        One of ``PRESETS``. See chapter 1.

    Example:
        >>> get_preset("cpu").model
        'offline-minilm'
    """
    return PRESETS[resolve_preset_name(name)]
