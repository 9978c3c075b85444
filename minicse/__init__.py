"""minicse: contrastive sentence embeddings (SimCSE) in a small, readable library.

Everything public is importable from here, e.g. ``from minicse import train_unsup``.
Submodules are imported on first use, so ``import minicse`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

# submodule -> the public names it defines
_MODULES = {
    "losses": "cosine_similarity_matrix pairwise_distance_matrix contrastive_loss "
    "triplet_loss mine_triplets mined_triplet_loss info_nce_loss",
    "pooling": "pool POOLERS cls_pooling mean_pooling first_last_mean_pooling "
    "last2_mean_pooling",
    "encoder": "SentenceEncoder tiny_encoder offline_model_path DamagedFileError",
    "augment": "dropout_views set_dropout word_deletion random_crop",
    "data": "STS_TASKS STSB_LANGUAGES data_dir load_sts load_nli_triplets load_corpus",
    "evaluate": "spearman pearson evaluate_sts score_sts_pairs sts_dev_metrics "
    "sts_positive_pairs",
    "metrics": "alignment uniformity",
    "config": "TrainConfig Preset PRESETS get_preset estimate_minutes",
    "train": "train_unsup train_sup make_state train_step TrainState",
    "cache": "cached_train cache_dir",
    "batching": "make_batch",
    "distributed": "init_distributed gather_with_grad",
    "gradcache": "grad_cache_step",
    "plotting": "plot_history plot_similarity_matrix plot_alignment_uniformity "
    "plot_embeddings_2d",
    "utils": "set_seed pick_device glue cpu_threads NonFiniteError",
}
_EXPORTS = {
    name: module for module, names in _MODULES.items() for name in names.split()
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
