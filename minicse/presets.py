"""Presets: one notebook or script, three sizes of run.

* ``smoke`` -- CI: a tiny random BERT, the first rows of each file, seconds.
* ``cpu`` -- a laptop: the offline all-MiniLM-L6-v2, real data subsets, minutes.
* ``gpu`` -- Colab or a workstation: bert-base-uncased, wiki1m and the full NLI
  set: the SimCSE paper's setup (Gao et al., 2021, arXiv:2104.08821, appendix A).

``MINICSE_PRESET`` overrides the choice; ``auto`` picks ``gpu`` when CUDA is
there and ``cpu`` otherwise. See chapter 1 (setup cell) and chapter 6.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch

from .utils import check_choice

__all__ = ["Preset", "PRESETS", "get_preset", "resolve_preset_name"]

PRESET_NAMES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Preset:
    """Sizes of a run. ``None`` in a ``*_rows`` field means "all rows".

    Attributes:
        name: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        model: what ``SentenceEncoder.from_pretrained`` loads: ``"tiny"``,
            ``"offline-minilm"`` or a hub name.
        corpus_rows: sentences of the unsupervised corpus to train on.
        triplet_rows: NLI triplets to train on.
        sts_rows: rows of each STS file used in evaluation.
        unsup: ``TrainConfig`` overrides for ``train_unsup``.
        sup: ``TrainConfig`` overrides for ``train_sup``.
    """

    name: str
    model: str
    corpus_rows: int | None
    triplet_rows: int | None
    sts_rows: int | None
    unsup: dict[str, Any] = field(default_factory=dict)
    sup: dict[str, Any] = field(default_factory=dict)


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
        unsup=dict(batch_size=64, num_epochs=1, eval_steps=125),
        sup=dict(batch_size=512, num_epochs=3, eval_steps=125),
    ),
}


def resolve_preset_name(name: str | None = None) -> str:
    """``name`` or ``$MINICSE_PRESET`` or ``"auto"``, with ``auto`` resolved.

    Example:
        >>> resolve_preset_name("smoke")
        'smoke'
    """
    if name is None:
        name = os.environ.get("MINICSE_PRESET", "").strip() or "auto"
    check_choice(name, "preset", ("auto", *PRESET_NAMES))
    if name == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return name


def get_preset(name: str | None = None) -> Preset:
    """The :class:`Preset` called ``name`` (``None``: ``$MINICSE_PRESET`` or auto).

    Example:
        >>> get_preset("cpu").model
        'offline-minilm'
    """
    return PRESETS[resolve_preset_name(name)]
