"""Training entry points: ``TrainConfig``, ``train_unsup`` and ``train_sup``.

Inputs are checked here, before anything is loaded; the step and the loop are
in :mod:`minicse.loop`. Reference: Gao, Yao & Chen, 2021, arXiv:2104.08821,
section 3 and appendix A. See chapters 6 and 7.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from . import checkpoint as ckpt
from . import loop
from .data import load_corpus, load_nli_triplets, load_sts
from .distributed import cleanup_distributed, init_distributed, shard_sizes, wrap_ddp
from .encoder import MLP_MODES, SentenceEncoder, check_head
from .presets import get_preset
from .utils import (
    amp_dtype,
    check_choice,
    check_int,
    check_non_negative,
    check_positive,
    check_texts,
    set_seed,
)

__all__ = ["TrainConfig", "train_unsup", "train_sup"]

_MLP_MODES = ("auto", *MLP_MODES)  # "auto": SimCSE's pairs, see head_for
_PRECISIONS = ("auto", "bf16", "fp16", "fp32")
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
        max_steps: optimizer steps; ``None`` = ``num_epochs`` epochs.
        warmup_ratio, warmup_steps: linear warm-up (the larger one wins).
        weight_decay: AdamW decay (not on biases and LayerNorm weights).
        max_grad_norm: clip the global gradient norm (``None``: no clipping).
            SimCSE's official code computes 1/N of the exact gradient on N GPUs
            and clips that at 1.0; AdamW cancels the scale but not the clip, so
            pass ``max_grad_norm=N`` to match an official N-GPU run.
        eval_steps: STS-B dev evaluation period in steps, also at the end;
            ``None`` = no evaluation (the last weights are kept).
        dev_rows: evaluate on the first ``dev_rows`` STS-B dev pairs (None: all).
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
    max_steps: int | None = None  # HF TrainingArguments: max_steps=-1 (use epochs)
    warmup_ratio: float = 0.0  # HF default: no warm-up, linear decay (paper)
    warmup_steps: int = 0  # HF default
    weight_decay: float = 0.0  # HF default, which SimCSE keeps
    max_grad_norm: float | None = 1.0  # HF default: SimCSE's Trainer clips at 1.0
    eval_steps: int | None = 125  # run_unsup_example.sh: --eval_steps 125
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
        cls, name: str | None = None, objective: str = "unsup", **overrides: Any
    ) -> TrainConfig:
        """The paper's defaults resized by preset ``name`` (``smoke``/``cpu``/``gpu``;
        ``None``: ``$MINICSE_PRESET`` or auto), then ``overrides``.

        Example:
            >>> TrainConfig.from_preset("smoke").max_steps
            20
        """
        if objective not in _OBJECTIVES:
            raise ValueError(
                f"unknown objective {objective!r}; choose 'unsup' or 'sup'"
            )
        preset = get_preset(name)
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
    check_choice(cfg.precision, "precision", _PRECISIONS)
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


# ----------------------------------------------------------------------------------
# Inputs: sentences, triplets, model -- all checked before any training starts.
# ----------------------------------------------------------------------------------


def _as_sentences(sentences: Any) -> list[tuple[str]]:
    """Rows ``(sentence,)`` from a list/iterable, a corpus name or a text file."""
    if isinstance(sentences, (str, os.PathLike)):
        name = str(sentences)
        if name == "wiki1m":
            sentences = load_corpus(name)
        elif Path(name).is_file():
            sentences = load_corpus(path=name)
        else:
            raise ValueError(
                f"sentences={name!r} is neither a corpus name ('wiki1m') nor a file; "
                "pass a list of strings, 'wiki1m' or a text file with one per line"
            )
    return [(text,) for text in check_texts(sentences, "sentences")]


def _as_rows(triplets: Any) -> list[tuple[str, ...]]:
    """Rows ``(sent0, sent1[, hard_neg])`` from rows, a DataFrame, "nli" or a file."""
    if isinstance(triplets, (str, os.PathLike)):
        name = str(triplets)
        if name != "nli" and not Path(name).is_file():
            raise ValueError(
                f"triplets={name!r} is neither 'nli' nor a file; pass rows "
                "(sent0, sent1, hard_neg), a DataFrame, 'nli' or a .tsv/.csv file"
            )
        triplets = load_nli_triplets(None if name == "nli" else name)
    if hasattr(triplets, "columns") and hasattr(triplets, "itertuples"):
        columns = [c for c in ("sent0", "sent1", "hard_neg") if c in triplets.columns]
        if columns[:2] != ["sent0", "sent1"]:
            raise ValueError(
                "a triplets DataFrame needs columns sent0, sent1 (and optionally "
                f"hard_neg), got {list(triplets.columns)}"
            )
        triplets = triplets[columns].itertuples(index=False, name=None)
    if isinstance(triplets, (dict, bytes)) or not isinstance(triplets, Iterable):
        raise TypeError(
            f"triplets must be rows of strings, got {type(triplets).__name__}"
        )
    rows = [tuple(row) if isinstance(row, (tuple, list)) else row for row in triplets]
    if not rows:
        raise ValueError("triplets is empty; pass at least one (sent0, sent1) row")
    width = len(rows[0]) if isinstance(rows[0], tuple) else 0
    for i, row in enumerate(rows):
        _check_row(row, i, width)
    return rows


def _check_row(row: Any, index: int, width: int) -> None:
    names = ("sent0", "sent1", "hard_neg")
    if not isinstance(row, tuple) or len(row) not in (2, 3) or len(row) != width:
        got = len(row) if isinstance(row, tuple) else type(row).__name__
        raise ValueError(
            f"triplets[{index}] must have {width if width in (2, 3) else '2 or 3'} "
            f"fields (sent0, sent1[, hard_neg]) like the first row, got {got}: {row!r}"
        )
    for name, text in zip(names, row, strict=False):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(
                f"triplets[{index}] field {name!r} is missing or empty ({text!r}); "
                "drop incomplete rows first"
            )


def _as_encoder(model: Any, cfg: TrainConfig) -> SentenceEncoder:
    if isinstance(model, SentenceEncoder):
        return model
    if isinstance(model, (str, os.PathLike)):  # no max_length: it is a training
        return SentenceEncoder.from_pretrained(  # setting, not the encoder's
            str(model), pooling=cfg.pooling, mlp=head_for(cfg)
        )
    raise TypeError(
        "model must be a SentenceEncoder, a hub name, a local path, 'tiny' or "
        f"'offline-minilm', got {type(model).__name__}"
    )


def _check_sizes(rows: list, cfg: TrainConfig, world_size: int) -> None:
    if cfg.batch_size > len(rows):
        raise ValueError(
            f"batch_size={cfg.batch_size} is larger than the {len(rows)} training "
            "rows; lower batch_size or pass more data"
        )
    if cfg.batch_size < world_size or (
        cfg.grad_cache_chunk is not None and cfg.grad_cache_chunk > cfg.batch_size
    ):
        raise ValueError(
            f"batch_size={cfg.batch_size} must be >= the {world_size} processes and "
            f">= grad_cache_chunk={cfg.grad_cache_chunk}"
        )


# ----------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------


def train_unsup(
    model: Any, sentences: Any, config: TrainConfig | None = None, **overrides: Any
) -> SentenceEncoder:
    """Unsupervised SimCSE: each sentence is its own positive under two dropout masks.

        loss = -1/B sum_i log softmax_j( cos(h_i, h'_j) / tau )[i]

    with ``h_i``, ``h'_i`` the two encodings of sentence ``i`` (one forward pass of
    the batch stacked twice) and in-batch negatives ``h'_j``, gathered across
    processes under ``torchrun``.

    Args:
        model: a ``SentenceEncoder`` (trained in place, with its own pooling and
            MLP head), or a hub name, a local path, ``"tiny"`` or
            ``"offline-minilm"`` (built with ``pooling``/``mlp``/``max_length``).
        sentences: a list/iterable of strings, ``"wiki1m"`` or a text file.
        config: a ``TrainConfig`` (its objective is ignored); default
            ``TrainConfig.unsup()``.
        **overrides: any ``TrainConfig`` field, e.g. ``max_steps=200``.

    Returns:
        The trained encoder (best STS-B dev weights when evaluating), with
        ``.history``: dicts ``{step, loss, lr}``, ``{step, dev}`` (Spearman x100)
        and ``{step, interrupted}`` after Ctrl-C.

    Raises:
        ValueError, TypeError, FileNotFoundError: bad inputs, before training.
        FloatingPointError: the loss became NaN/inf (names step and checkpoint).

    References:
        Gao, Yao & Chen, 2021, arXiv:2104.08821, eq. 1 and appendix A.

    Example:
        >>> from minicse.encoder import tiny_encoder
        >>> texts = [f"sentence number {i}" for i in range(16)]
        >>> enc = train_unsup(tiny_encoder(), texts, batch_size=8, max_steps=2,
        ...                   eval_steps=None, progress=False)
        >>> [round(r["step"]) for r in enc.history]
        [2]

    See chapter 6.
    """
    cfg = _config("unsup", config, overrides)
    return _train(model, _as_sentences(sentences), cfg)


def train_sup(
    model: Any, triplets: Any, config: TrainConfig | None = None, **overrides: Any
) -> SentenceEncoder:
    """Supervised SimCSE on NLI: entailment positives, contradiction hard negatives.

        loss_i = -log e^{s(h_i, h+_i)}
                 / sum_j (e^{s(h_i, h+_j)} + e^{s(h_i, h-_j) + w [i = j]})

    with ``s = cos / tau`` and ``w = hard_negative_weight`` (``log alpha``).

    Args:
        model: as in :func:`train_unsup`.
        triplets: rows ``(sent0, sent1, hard_neg)`` or pairs ``(sent0, sent1)``, a
            DataFrame with those columns, ``"nli"`` or a .tsv/.csv file.
        config: a ``TrainConfig``; default ``TrainConfig.sup()``.
        **overrides: any ``TrainConfig`` field.

    Returns:
        The trained encoder with ``.history`` (see :func:`train_unsup`).

    References:
        Gao, Yao & Chen, 2021, arXiv:2104.08821, eq. 5 and appendix A.

    Example:
        >>> from minicse.encoder import tiny_encoder
        >>> rows = [(f"a {i}", f"b {i}", f"c {i}") for i in range(8)]
        >>> enc = train_sup(tiny_encoder(), rows, batch_size=4, max_steps=1,
        ...                 eval_steps=None, progress=False)
        >>> enc.history[-1]["step"]
        1

    See chapter 7.
    """
    cfg = _config("sup", config, overrides)
    return _train(model, _as_rows(triplets), cfg)


def _config(objective: str, config: TrainConfig | None, overrides: dict) -> TrainConfig:
    if config is None:
        return getattr(TrainConfig, objective)(**overrides)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    return _build(TrainConfig, {**asdict(config), **overrides, "objective": objective})


def _train(
    model: Any, rows: list[tuple[str, ...]], cfg: TrainConfig
) -> SentenceEncoder:
    """Set up (checks first), resume if asked, train, select the best model."""
    found = ckpt.latest_checkpoint(cfg.output_dir) if cfg.resume else None
    if cfg.resume and found is None:  # as HF's Trainer: never a silent restart
        raise FileNotFoundError(
            f"resume=True but output_dir={str(cfg.output_dir)!r} holds no "
            "checkpoint-<step> folder to resume from; drop resume=True to start "
            "a new run there"
        )
    owns_group = not torch.distributed.is_initialized()
    info = init_distributed(cfg.device)
    try:
        _check_sizes(rows, cfg, info.world_size)
        set_seed(cfg.seed)
        encoder = _as_encoder(model, cfg)
        dev = _load_dev(cfg) if cfg.eval_steps and info.is_main else None
        state = _new_state(encoder, rows, cfg, info)
        set_seed(cfg.seed + info.rank)  # different dropout masks on every rank
        if found is not None:
            loop.restore(state, found)
        try:
            loop.fit(state, rows, dev)
            loop.finish(state, dev)
        except KeyboardInterrupt:
            message = loop.interrupted(state)
            if info.is_main:
                print(message, file=sys.stderr)
        encoder.history = state.history
        return encoder
    finally:
        if owns_group:
            cleanup_distributed()


def _new_state(encoder: SentenceEncoder, rows: list, cfg: TrainConfig, info) -> Any:
    """Model on its device (DDP-wrapped under a launcher), AdamW, schedule, scaler."""
    from transformers import get_linear_schedule_with_warmup

    encoder = encoder.to(info.device).train()
    total = cfg.max_steps or cfg.num_epochs * (len(rows) // cfg.batch_size)
    optimizer = _optimizer(encoder, cfg, info.device)
    warmup = max(cfg.warmup_steps, math.ceil(cfg.warmup_ratio * total))
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
    fp16 = amp_dtype(info.device, cfg.precision) == torch.float16
    if fp16 and cfg.grad_cache_chunk:
        raise ValueError("grad_cache_chunk needs precision 'bf16' or 'fp32', not fp16")
    scaler = torch.amp.GradScaler(info.device.type, enabled=fp16)
    model = wrap_ddp(encoder, info)
    state = loop.TrainState(
        cfg, encoder, model, optimizer, scheduler, scaler, info, total
    )
    state.run = loop.identity(cfg, len(rows), info)
    state.sizes = shard_sizes(cfg.batch_size, info.world_size)
    return state


def _optimizer(encoder: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW (fused kernel on CPU/CUDA, else foreach); no decay on biases/norms."""
    params = [p for p in encoder.parameters() if p.requires_grad]
    groups = [
        {
            "params": [p for p in params if p.ndim >= 2],
            "weight_decay": cfg.weight_decay,
        },
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    fast = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, **fast)


def _load_dev(cfg: TrainConfig) -> tuple[list[str], list[str], list[float]]:
    """STS-B dev pairs for model selection (before training, so errors come first)."""
    try:
        frame = load_sts("stsb", "dev", max_rows=cfg.dev_rows)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{err}\n(STS-B dev is needed for model selection every eval_steps; "
            "pass eval_steps=None to train without it)"
        ) from err
    return tuple(frame[c].tolist() for c in ("sentence1", "sentence2", "score"))
