"""Presets: one notebook or script, three sizes of run.

``smoke`` (CI: a tiny random BERT, the first rows of each file, seconds), ``cpu``
(a laptop: the offline all-MiniLM-L6-v2, data subsets, minutes) and ``gpu``
(bert-base-uncased on wiki1m and NLI: the SimCSE paper's setup, Gao et al., 2021,
arXiv:2104.08821, appendix A, cut to a budget of about 16 minutes of training on a
T4 each, see :func:`estimate_minutes`; ``max_steps=None`` is the paper's full run).
``$MINICSE_PRESET`` picks one; ``auto`` means ``gpu`` with CUDA, else ``cpu``.
``$MINICSE_SIZES`` runs a preset's model and code paths at another preset's sizes
(CI: every chapter's ``gpu`` path at ``smoke`` sizes). See chapter 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import torch

from .utils import check_choice, check_positive, env_flag

__all__ = [
    "Preset",
    "PRESETS",
    "get_preset",
    "resolve_preset_name",
    "estimate_minutes",
    "step_flops",
    "matmul_params",
    "T4_TFLOPS",
    "TOKENS_PER_ROW",
]

T = TypeVar("T")
# TrainConfig fields that size a run (MINICSE_SIZES takes them from the sizes
# preset): the step count and the rate that goes with it (a 20-step run needs a
# larger one to move at all). Everything else is the preset's own code path.
SIZE_FIELDS = ("batch_size", "max_steps", "num_epochs", "eval_steps", "learning_rate")


@dataclass(frozen=True)
class Preset:
    """Sizes of a run; ``None`` in a ``*_rows`` field means "all rows".

    ``sizes`` names the preset whose step and row counts these are: ``name``
    itself, unless ``get_preset`` applied ``$MINICSE_SIZES``.
    """

    name: str  # "smoke", "cpu" or "gpu"
    model: str  # for from_pretrained: "tiny", "offline-minilm" or a hub name
    corpus_rows: int | None  # sentences of the unsupervised corpus to train on
    triplet_rows: int | None  # NLI triplets to train on
    sts_rows: int | None  # rows of each STS file used in evaluation
    unsup: dict[str, Any] = field(default_factory=dict)  # TrainConfig.unsup(**unsup)
    sup: dict[str, Any] = field(default_factory=dict)  # TrainConfig.sup(**sup)
    sizes: str = ""  # "" means name

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", self.sizes or self.name)

    def size(self, *, smoke: T, cpu: T, gpu: T) -> T:
        """The value for this preset's sizes, e.g. ``preset.size(smoke=20, cpu=30,
        gpu=500)`` steps: ``smoke``'s under ``MINICSE_SIZES=smoke`` whatever the name.

        Example:
            >>> get_preset("gpu", sizes="smoke").size(smoke=20, cpu=30, gpu=500)
            20
        """
        return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[self.sizes]


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
        # The same counts from the data folder and the hub: wiki1m_head.txt is the
        # hub's first 11,914 wiki1m lines; triplets.tsv holds 5,881 SNLI dev/test
        # triplets, the hub's nli_for_simcse.csv gives its first 5,881 (train).
        corpus_rows=11_914,
        triplet_rows=5_881,
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
        # Each about 16 minutes on Colab's T4 (estimate_minutes). max_steps=None
        # is the paper's run: unsup's epoch of 15,625 steps (about 70 minutes),
        # sup's 3 epochs of 538 steps (about 71 minutes).
        unsup=dict(batch_size=64, max_steps=3_500, eval_steps=125),
        # Batch 512 in a 16 GB GPU: GradCache, 128 rows at a time (same gradients);
        # 375 steps are 0.7 of an epoch, 23 % of the paper's 1,614.
        sup=dict(
            batch_size=512,
            max_steps=375,
            num_epochs=3,
            eval_steps=125,
            grad_cache_chunk=128,
        ),
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


def get_preset(name: str | None = None, sizes: str | None = None) -> Preset:
    """The :class:`Preset` called ``name``, at the step and row counts of ``sizes``.

    With other ``sizes``, the name, model and every other setting stay the
    preset's own; the rows, ``SIZE_FIELDS`` and ``dev_rows`` come from ``sizes``,
    and GradCache stays on with its chunk scaled to the same chunks per batch.

    Args:
        name: as for ``resolve_preset_name`` (None: ``$MINICSE_PRESET``, else auto).
        sizes: ``"smoke"``, ``"cpu"`` or ``"gpu"``; None: ``$MINICSE_SIZES``,
            else the preset's own.

    Example:
        >>> small = get_preset("gpu", sizes="smoke")
        >>> small.name, small.model, small.sizes, small.unsup["max_steps"]
        ('gpu', 'bert-base-uncased', 'smoke', 20)

    See chapter 1.
    """
    preset = PRESETS[resolve_preset_name(name)]
    sizes = sizes if sizes is not None else env_flag("MINICSE_SIZES") or preset.name
    check_choice(sizes, "sizes (MINICSE_SIZES)", tuple(PRESETS))
    if sizes == preset.name:
        return preset
    small = PRESETS[sizes]
    return replace(
        preset,
        corpus_rows=small.corpus_rows,
        triplet_rows=small.triplet_rows,
        sts_rows=small.sts_rows,
        unsup=_resized(preset.unsup, small.unsup),
        sup=_resized(preset.sup, small.sup),
        sizes=sizes,
    )


def _resized(own: dict[str, Any], small: dict[str, Any]) -> dict[str, Any]:
    """``own`` settings with ``small``'s sizes (GradCache chunk scaled along)."""
    out = {k: v for k, v in own.items() if k not in SIZE_FIELDS}
    out.update({k: v for k, v in small.items() if k in SIZE_FIELDS})
    if own.get("grad_cache_chunk"):  # the same chunks per batch, at least two
        chunks = max(2, own["batch_size"] // own["grad_cache_chunk"])
        out["grad_cache_chunk"] = max(1, out["batch_size"] // chunks)
    return out


T4_TFLOPS = 8.0  # assumed sustained on Colab's T4; see estimate_minutes
# (layers, hidden, intermediate) of each preset's model
_SHAPES = {
    "bert-base-uncased": (12, 768, 3072),
    "offline-minilm": (6, 384, 1536),
    "tiny": (2, 64, 256),
}
# Padded positions per row. Training pads each forward to its longest row (at
# most max_length): 32.0 measured on wiki1m batches of 64; 16.7 on SNLI dev/test
# in GradCache's length-sorted chunks of 512-row batches, 20 assumed for the hub's
# SNLI+MNLI (MNLI's premises are longer). STS-B dev in encode's sorted batches of
# 128: 17.0. Measured with bert-base-uncased's WordPiece: benchmarks/gpu_estimate.py.
TOKENS_PER_ROW = {"unsup": 32.0, "sup": 20.0, "dev": 17.0}
_HUB_ROWS = {"unsup": 1_000_000, "sup": 275_601}  # wiki1m, nli_for_simcse.csv


def matmul_params(layers: int, hidden: int, intermediate: int) -> int:
    """Weights that a BERT multiplies every token by: ``L (4 H^2 + 2 H I)``.

    Embeddings are looked up, not multiplied, and the ``H x H`` MLP head runs
    once per sentence: bert-base multiplies each token by 84.9M of its 109.5M.

    Example:
        >>> matmul_params(12, 768, 3072)
        84934656
    """
    return layers * (4 * hidden**2 + 2 * hidden * intermediate)


def step_flops(shape: tuple[int, int, int], rows: int, tokens: float) -> float:
    """FLOPs of a forward and backward of ``rows`` rows of ``tokens`` positions:
    ``6 N`` per position, attention's ``12 L T H``, the head's ``6 H^2`` per row."""
    layers, hidden, intermediate = shape
    per_token = 6 * matmul_params(*shape) + 12 * layers * tokens * hidden
    return rows * (tokens * per_token + 6 * hidden**2)


def estimate_minutes(
    preset: str | Preset = "gpu",
    objective: str = "unsup",
    *,
    tflops: float = T4_TFLOPS,
    **overrides: Any,
) -> float:
    """Estimated minutes of ``TrainConfig.from_preset(preset, objective, **overrides)``
    (a name: that preset at its own sizes; a ``Preset``: as it is).

    FLOPs / ``tflops``: a step is a forward and backward of ``views x batch``
    rows (unsup: ``[x; x]``, 2 views; sup: 3 columns), :func:`step_flops` at
    ``TOKENS_PER_ROW``; GradCache adds a forward without a graph (x 4/3); each
    STS-B dev evaluation is a forward of its ``2 x dev_rows`` sentences (``2 N`` per
    position). ``T4_TFLOPS = 8``: 12 % of the T4's 65 TFLOP/s fp16 peak, for a
    70 W card, 32-token rows and eager PyTorch (the SimCSE authors' full unsup
    epoch took under an hour on one RTX 3090: at least 9 TFLOP/s). Your own
    rate: steps per second x ``step_flops``. Model loading and downloads are
    not counted. See chapter 6.

    Example:
        >>> round(estimate_minutes("gpu", "sup"), 1)  # 375 steps of batch 512
        16.4
    """
    from .config import TrainConfig

    chosen = preset if isinstance(preset, Preset) else get_preset(preset, preset)
    check_positive(tflops, "tflops")
    if chosen.model not in _SHAPES:
        raise ValueError(
            f"no FLOP count for model {chosen.model!r}; known: {sorted(_SHAPES)}"
        )
    cfg = TrainConfig.from_preset(chosen, objective, **overrides)
    own = chosen.corpus_rows if objective == "unsup" else chosen.triplet_rows
    rows = own or _HUB_ROWS[objective]
    steps = cfg.max_steps or cfg.num_epochs * (rows // cfg.batch_size)
    views = 3 if objective == "sup" else (1 if cfg.fixed_mask else 2)
    shape = _SHAPES[chosen.model]
    flops = steps * step_flops(shape, views * cfg.batch_size, TOKENS_PER_ROW[objective])
    if cfg.grad_cache_chunk:
        flops *= 4 / 3
    if cfg.eval_steps:
        evals = -(-steps // cfg.eval_steps)  # every eval_steps, and at the end
        sentences = 2 * (cfg.dev_rows or 1_500)
        flops += evals * step_flops(shape, sentences, TOKENS_PER_ROW["dev"]) / 3
    return flops / (tflops * 1e12) / 60
