"""minicse: contrastive sentence embeddings (SimCSE) in a small, readable library.

Everything public is importable from here, e.g. ``from minicse import train_unsup``.
Submodules are imported on first use, so ``import minicse`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # losses
    "cosine_similarity_matrix": "losses",
    "pairwise_distance_matrix": "losses",
    "contrastive_loss": "losses",
    "triplet_loss": "losses",
    "mine_triplets": "losses",
    "mined_triplet_loss": "losses",
    "info_nce_loss": "losses",
    # pooling
    "pool": "pooling",
    "POOLERS": "pooling",
    "cls_pooling": "pooling",
    "mean_pooling": "pooling",
    "first_last_mean_pooling": "pooling",
    "last2_mean_pooling": "pooling",
    # encoder
    "SentenceEncoder": "encoder",
    "tiny_encoder": "encoder",
    "offline_model_path": "encoder",
    # augment
    "dropout_views": "augment",
    "word_deletion": "augment",
    "random_crop": "augment",
    "word_swap": "augment",
    # data
    "STS_TASKS": "data",
    "data_dir": "data",
    "load_sts": "data",
    "load_nli_triplets": "data",
    "load_corpus": "data",
    # evaluate
    "spearman": "evaluate",
    "pearson": "evaluate",
    "evaluate_sts": "evaluate",
    "score_sts_pairs": "evaluate",
    # metrics
    "alignment": "metrics",
    "uniformity": "metrics",
    "sts_positive_pairs": "metrics",
    # presets
    "Preset": "presets",
    "PRESETS": "presets",
    "get_preset": "presets",
    "resolve_preset_name": "presets",
    # training
    "TrainConfig": "train",
    "train_unsup": "train",
    "train_sup": "train",
    # several processes and large batches
    "init_distributed": "distributed",
    "gather_with_grad": "distributed",
    "grad_cache_step": "gradcache",
    # plotting
    "plot_history": "plotting",
    "plot_similarity_matrix": "plotting",
    "plot_alignment_uniformity": "plotting",
    "plot_embeddings_2d": "plotting",
    # utils
    "set_seed": "utils",
    "pick_device": "utils",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'minicse' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value  # cache: the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__
