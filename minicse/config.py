"""``TrainConfig``: every setting of a SimCSE run, with the paper's values as defaults.

Each default is commented with its source in the official code (princeton-nlp/SimCSE,
``run_unsup_example.sh``, ``run_sup_example.sh``); every field is checked when the
config is made, before anything is loaded. See chapters 6 and 7.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .pooling import MLP_MODES, check_head
from .presets import Preset, get_preset
from .utils import (
    PRECISIONS,
    check_choice,
    check_int,
    check_non_negative,
    check_positive,
)

__all__ = ["TrainConfig", "head_for"]

_MLP_MODES = ("auto", *MLP_MODES)  # "auto": SimCSE's pairs, see head_for
_OBJECTIVES = ("unsup", "sup")
# Supervised SimCSE differs from the unsupervised defaults only in these fields
# (paper appendix A; SimCSE run_sup_example.sh).
_SUP_DEFAULTS = dict(
    batch_size=512,  # run_sup_example.sh: --per_device_train_batch_size 128 x 4 GPUs
    learning_rate=5e-5,  # run_sup_example.sh: --learning_rate 5e-5
    num_epochs=3,  # run_sup_example.sh: --num_train_epochs 3
)


@dataclass
class TrainConfig:
    """Everything a SimCSE run needs; the defaults are the paper's unsup values.

    Use ``TrainConfig.unsup(**kw)``, ``TrainConfig.sup(**kw)`` (batch 512, lr 5e-5,
    3 epochs, MLP kept) or ``TrainConfig.from_preset("smoke"|"cpu"|"gpu", ...)``.

    Attributes:
        objective: ``"unsup"`` (dropout views) or ``"sup"`` (NLI triplets).
        batch_size: global batch, split over processes (all see every candidate).
        learning_rate: AdamW peak learning rate, decayed linearly to 0.
        num_epochs: passes over the data (ignored when ``max_steps`` is set).
        max_length: truncation of *training* inputs; evaluation never truncates.
        temperature: InfoNCE temperature tau.
        pooling, mlp: the encoder built when ``model`` is a name. ``mlp="auto"``:
            SimCSE's combinations (``cls``: ``"train"`` unsup, ``"always"`` sup;
            no head on other poolers); ``cls_before_pooler`` takes no head.
        hard_negative_weight: SimCSE's ``log(alpha)`` for hard negatives (sup).
        symmetric: also score positives -> anchors (not in SimCSE).
        dropout: set every dropout rate of the transformer (hidden and
            attention) for training; ``None`` keeps the model's (the paper's
            0.1 for BERT; its Table 3 sweeps it). See ``minicse.set_dropout``.
        fixed_mask: unsup only: one forward pass per batch, so both views share
            one dropout mask (the paper's Table 3 "fixed 0.1" control).
        max_steps: optimizer steps; ``None`` = ``num_epochs`` epochs.
        warmup_ratio, warmup_steps: linear warm-up (the larger one wins).
        weight_decay: AdamW decay (not on biases and LayerNorm weights).
        max_grad_norm: clip the global gradient norm (``None``: no clipping).
            SimCSE's official code computes 1/N of the exact gradient on N GPUs
            and clips that at 1.0; AdamW cancels the scale but not the clip, so
            pass ``max_grad_norm=N`` to match an official N-GPU run.
        eval_steps: dev evaluation period in steps, also at the end;
            ``None`` = no evaluation (the last weights are kept).
        dev: the scored pairs the best model is selected on: ``"stsb"``
            (STS-B dev), ``"stsb-<lang>"`` (its ``STSB_LANGUAGES`` translation),
            a .tsv/.csv file (``sentence1``, ``sentence2``, ``score``) or ``None``
            (no evaluation). ``train_*(dev=...)`` also takes a DataFrame or
            triples, kept out of the config: see chapter 10.
        dev_rows: evaluate on the first ``dev_rows`` dev pairs (None: all).
        seed: seeds Python, NumPy, torch and the data order.
        precision: ``"auto"`` (see :func:`minicse.utils.amp_dtype`), ``"bf16"``,
            ``"fp16"`` (with a gradient scaler) or ``"fp32"``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``.
        output_dir: folder for the best model and checkpoints (None: memory only).
        save_steps: checkpoint period; ``None`` = at every evaluation.
        resume: continue from the newest checkpoint in ``output_dir``.
        grad_cache_chunk: rows per GradCache chunk (a big batch in little memory,
            the same gradients); ``None``: one plain forward.
        length_groups: at most this many length-sorted forwards per step, each
            padded to its own longest row (same batch, same negatives).
            ``"auto"``: 8 on CPU, 1 on CUDA/mps; 1 with GradCache and DDP.
        num_workers: batches tokenized ahead in a thread (``"auto"``: 0 on CPU,
            where it slowed 2-core steps, 1 on CUDA/mps).
        log_every: steps between loss records (and host syncs).
        progress: show a tqdm progress bar.
    """

    objective: str = "unsup"
    batch_size: int = 64  # run_unsup_example.sh: --per_device_train_batch_size 64
    learning_rate: float = 3e-5  # run_unsup_example.sh: --learning_rate 3e-5
    num_epochs: int = 1  # run_unsup_example.sh: --num_train_epochs 1
    max_length: int = 32  # run_unsup_example.sh: --max_seq_length 32
    temperature: float = 0.05  # run_unsup_example.sh: --temp 0.05
    pooling: str = "cls"  # run_unsup_example.sh: --pooler_type cls
    mlp: str | None = "auto"  # cls: unsup "train" (--mlp_only_train), sup "always"
    hard_negative_weight: float = 0.0  # SimCSE train.py: hard_negative_weight=0
    symmetric: bool = False  # SimCSE's loss is anchor -> candidates only
    dropout: float | None = None  # None: the model's own (BERT: 0.1, as SimCSE)
    fixed_mask: bool = False  # not SimCSE's method: its Table 3 control
    max_steps: int | None = None  # HF TrainingArguments: max_steps=-1 (use epochs)
    warmup_ratio: float = 0.0  # HF default: no warm-up, linear decay (paper)
    warmup_steps: int = 0  # HF default
    weight_decay: float = 0.0  # HF default, which SimCSE keeps
    max_grad_norm: float | None = 1.0  # HF default: SimCSE's Trainer clips at 1.0
    eval_steps: int | None = 125  # run_unsup_example.sh: --eval_steps 125
    dev: str | None = "stsb"  # SimCSE selects on STS-B dev (SentEval)
    dev_rows: int | None = None  # all 1,500 STS-B dev pairs (SimCSE: SentEval dev)
    seed: int = 42  # run_unsup_example.sh: --seed 42
    precision: str = "auto"  # run_unsup_example.sh: --fp16 (on GPU)
    device: str = "auto"
    output_dir: str | None = None
    save_steps: int | None = None
    resume: bool = False
    grad_cache_chunk: int | None = None
    length_groups: int | str = "auto"  # CPU: <= 8 length-sorted forwards
    num_workers: int | str = "auto"  # CPU: 0, CUDA/mps: 1 thread ahead
    log_every: int = 10
    progress: bool = True

    def __post_init__(self) -> None:
        _check_config(self)

    @classmethod
    def unsup(cls, **overrides: Any) -> TrainConfig:
        """Unsupervised SimCSE defaults plus ``overrides``."""
        return _build(cls, {"objective": "unsup", **overrides})

    @classmethod
    def sup(cls, **overrides: Any) -> TrainConfig:
        """Supervised SimCSE defaults (batch 512, lr 5e-5, 3 epochs, MLP kept)."""
        return _build(cls, {**_SUP_DEFAULTS, **overrides, "objective": "sup"})

    @classmethod
    def from_preset(
        cls,
        name: str | Preset | None = None,
        objective: str = "unsup",
        **overrides: Any,
    ) -> TrainConfig:
        """The paper's defaults resized by preset ``name`` (``smoke``/``cpu``/``gpu``;
        ``None``: ``$MINICSE_PRESET`` or auto; at ``$MINICSE_SIZES`` if set, see
        :func:`~minicse.presets.get_preset`; or a ``Preset``), then ``overrides``.

        Example:
            >>> TrainConfig.from_preset("smoke").max_steps
            20
        """
        if objective not in _OBJECTIVES:
            raise ValueError(
                f"unknown objective {objective!r}; choose 'unsup' or 'sup'"
            )
        preset = name if isinstance(name, Preset) else get_preset(name)
        sizes = dict(preset.unsup if objective == "unsup" else preset.sup)
        sizes["dev_rows"] = preset.sts_rows
        factory = cls.unsup if objective == "unsup" else cls.sup
        return factory(**{**sizes, **overrides})


def _build(cls: type, values: dict[str, Any]) -> TrainConfig:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        hint = ""
        if "preset" in unknown:
            hint = (
                "; for a preset's sizes pass config=TrainConfig.from_preset("
                f"{values['preset']!r}, {values.get('objective', 'unsup')!r})"
            )
        raise TypeError(
            f"unknown TrainConfig field(s) {unknown}; valid fields: "
            f"{sorted(known)}{hint}"
        )
    return cls(**values)


def _check_config(cfg: TrainConfig) -> None:
    """Raise a clear error for any invalid field, before anything is loaded."""
    from .pooling import POOLERS

    check_choice(cfg.objective, "objective", _OBJECTIVES)
    check_choice(cfg.pooling, "pooling", POOLERS)
    check_choice(cfg.mlp, "mlp", _MLP_MODES)
    check_head(cfg.pooling, None if cfg.mlp == "auto" else cfg.mlp)
    check_choice(cfg.precision, "precision", PRECISIONS)
    for name in ("batch_size", "num_epochs", "max_length", "log_every"):
        check_int(getattr(cfg, name), name)
    for name in ("max_steps", "eval_steps", "save_steps", "grad_cache_chunk"):
        check_int(getattr(cfg, name), name, optional=True)
    check_int(cfg.dev_rows, "dev_rows", optional=True)
    check_int(cfg.length_groups, "length_groups", auto=True)
    check_int(cfg.num_workers, "num_workers", minimum=0, auto=True)
    for name in ("warmup_steps", "seed"):
        check_int(getattr(cfg, name), name, minimum=0)
    check_positive(cfg.learning_rate, "learning_rate")
    check_positive(cfg.temperature, "temperature")
    check_non_negative(cfg.weight_decay, "weight_decay")
    check_non_negative(cfg.warmup_ratio, "warmup_ratio")
    if cfg.warmup_ratio >= 1:
        raise ValueError(f"warmup_ratio must be < 1, got {cfg.warmup_ratio}")
    if cfg.dropout is not None and (
        isinstance(cfg.dropout, bool)
        or not isinstance(cfg.dropout, (int, float))
        or not 0 <= cfg.dropout < 1
    ):
        raise ValueError(f"dropout must be None or in [0, 1), got {cfg.dropout!r}")
    if not isinstance(cfg.fixed_mask, bool):
        raise TypeError(f"fixed_mask must be True or False, got {cfg.fixed_mask!r}")
    if cfg.fixed_mask and cfg.objective != "unsup":
        raise ValueError(
            "fixed_mask=True is an unsupervised control (both views of a sentence "
            "share one dropout mask); supervised SimCSE's views are other sentences"
        )
    weight = cfg.hard_negative_weight
    if not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise ValueError(
            f"hard_negative_weight (log alpha) must be finite, got {weight!r}"
        )
    if cfg.max_grad_norm is not None:
        check_positive(cfg.max_grad_norm, "max_grad_norm")
    if (cfg.resume or cfg.save_steps) and not cfg.output_dir:
        what = "resume=True" if cfg.resume else f"save_steps={cfg.save_steps}"
        raise ValueError(f"{what} needs output_dir, the folder that holds checkpoints")
    _check_output_dir(cfg)
    _check_dev(cfg)


def _check_dev(cfg: TrainConfig) -> None:
    """``dev``: ``None``, ``"stsb"``, ``"stsb-<language>"`` or a .tsv/.csv path."""
    from .data import STSB_LANGUAGES

    if isinstance(cfg.dev, os.PathLike):
        cfg.dev = os.fspath(cfg.dev)  # a string: the config stays JSON, as keys need
    named = ("stsb", *(f"stsb-{language}" for language in STSB_LANGUAGES))
    if cfg.dev is None or (
        isinstance(cfg.dev, str)
        and (cfg.dev in named or Path(cfg.dev).suffix.lower() in (".tsv", ".csv"))
    ):
        return
    raise (ValueError if isinstance(cfg.dev, str) else TypeError)(
        f"dev={cfg.dev!r} in a TrainConfig must be 'stsb', 'stsb-<language>' "
        f"(language in {STSB_LANGUAGES}), a .tsv/.csv file or None; pass a "
        "DataFrame or (sentence1, sentence2, score) triples to train_unsup/"
        "train_sup as dev=..."
    )


def _check_output_dir(cfg: TrainConfig) -> None:
    """``output_dir`` must be a folder, or not exist yet."""
    if cfg.output_dir is None:
        return
    if not isinstance(cfg.output_dir, (str, os.PathLike)):
        raise TypeError(
            f"output_dir must be a folder path, got {type(cfg.output_dir).__name__}"
        )
    folder = Path(cfg.output_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(
            f"output_dir={str(cfg.output_dir)!r} is an existing file, not a folder; "
            "pass a folder path (it is created if missing)"
        )


def head_for(cfg: TrainConfig) -> str | None:
    """The MLP mode ``cfg.mlp`` stands for (``"auto"``: SimCSE's combinations)."""
    if cfg.mlp != "auto":
        return cfg.mlp
    if cfg.pooling != "cls":
        return None
    return "train" if cfg.objective == "unsup" else "always"
