"""Training entry points: ``train_unsup`` and ``train_sup``.

Inputs are checked here, before anything is loaded; the settings are a
:class:`~minicse.config.TrainConfig`, the step and the loop are in
:mod:`minicse.loop`. Reference: Gao, Yao & Chen, 2021, arXiv:2104.08821, section 3
and appendix A. See chapters 6 and 7.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from . import checkpoint as ckpt
from . import loop
from .augment import set_dropout
from .config import TrainConfig, _build, head_for
from .data import _checked, load_corpus, load_nli_triplets, load_sts
from .distributed import cleanup_distributed, init_distributed, shard_sizes, wrap_ddp
from .encoder import SentenceEncoder
from .utils import amp_dtype, check_texts, set_seed

# TrainConfig itself lives in minicse.config
__all__ = ["TrainConfig", "train_unsup", "train_sup", "make_state"]

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
        **overrides: any ``TrainConfig`` field, e.g. ``max_steps=200``; ``dev``
            also takes scored pairs (a DataFrame with ``sentence1``,
            ``sentence2``, ``score`` or triples), checked before the model loads.

    Returns:
        The trained encoder (best dev weights when evaluating), with
        ``.selected_on`` (saved with it) and ``.history``: dicts ``{step, loss,
        lr}``, ``{step, dev, alignment, uniformity}`` (dev Spearman x100 and Wang
        & Isola's metrics, see ``sts_dev_metrics``), ``{step, interrupted}``.

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
    cfg, pairs = _config("unsup", config, overrides)
    rows = _as_sentences(sentences)
    return _train(model, rows, *_with_dev(cfg, pairs))


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
    cfg, pairs = _config("sup", config, overrides)
    rows = _as_rows(triplets)
    return _train(model, rows, *_with_dev(cfg, pairs))


def _config(objective: str, config: TrainConfig | None, overrides: dict) -> tuple:
    """The run's config, and the ``dev=`` pairs object kept out of it (or None)."""
    pairs = overrides.get("dev")
    if pairs is None or isinstance(pairs, (str, os.PathLike)):
        pairs = None
    else:
        del overrides["dev"]
    if config is None:
        return getattr(TrainConfig, objective)(**overrides), pairs
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    values = {**asdict(config), **overrides, "objective": objective}
    return _build(TrainConfig, values), pairs


def _train(
    model: Any,
    rows: list[tuple[str, ...]],
    cfg: TrainConfig,
    selected_on: dict | None = None,
    dev: tuple | None = None,
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
        encoder.selected_on = selected_on or {"dev": None}  # saved with the model
        state = make_state(encoder, rows, cfg, info, encoder.selected_on.get("sha256"))
        set_seed(cfg.seed + info.rank)  # different dropout masks on every rank
        if found is not None:  # the newest that loads (a damaged one is skipped)
            ckpt.resume(state, cfg.output_dir)
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


def make_state(
    encoder: SentenceEncoder,
    rows: list,
    cfg: TrainConfig,
    info: Any = None,
    dev: str | None = None,
) -> loop.TrainState:
    """The :class:`~minicse.loop.TrainState` a run starts from (as ``train_unsup``'s).

    The encoder on its device in train mode (DDP-wrapped under a launcher), AdamW
    (no decay on biases and norms), the linear schedule over the run's steps and
    the gradient scaler (on for fp16 only). ``rows`` are the training rows (their
    number sets the schedule); ``info`` defaults to ``init_distributed(cfg.device)``;
    ``dev``, the dev pairs' digest, joins the run's identity (:func:`ckpt.identity`).

    Example:
        >>> from minicse.encoder import tiny_encoder
        >>> cfg = TrainConfig.unsup(batch_size=4, max_steps=3, device="cpu")
        >>> state = make_state(tiny_encoder(), [("a",)] * 8, cfg)
        >>> state.total, state.step, state.optimizer.param_groups[0]["lr"]
        (3, 0, 3e-05)

    See chapter 6.
    """
    info = init_distributed(cfg.device) if info is None else info
    from transformers import get_linear_schedule_with_warmup

    if cfg.dropout is not None:
        set_dropout(encoder, cfg.dropout)
    encoder = encoder.to(info.device).train()
    total = cfg.max_steps or cfg.num_epochs * (len(rows) // cfg.batch_size)
    optimizer = _optimizer(encoder, cfg, info.device)
    warmup = max(cfg.warmup_steps, math.ceil(cfg.warmup_ratio * total))
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
    fp16 = amp_dtype(info.device, cfg.precision) == torch.float16
    scaler = torch.amp.GradScaler(info.device.type, enabled=fp16)
    model = wrap_ddp(encoder, info)
    state = loop.TrainState(
        cfg, encoder, model, optimizer, scheduler, scaler, info, total
    )
    state.run = ckpt.identity(cfg, len(rows), info, dev)
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


def _with_dev(cfg: TrainConfig, pairs: Any = None) -> tuple:
    """``(cfg, selected_on, (s1, s2, scores))`` of the run's checked dev pairs
    (``pairs``, else ``cfg.dev``); no pairs: ``eval_steps=None``, ``(..., None)``."""
    source = cfg.dev if pairs is None else pairs
    if source is None or not cfg.eval_steps:
        return replace(cfg, eval_steps=None), {"dev": None}, None
    try:
        frame = _dev_frame(source)
        if len(frame) < 20 or frame.score.nunique() < 2:
            raise ValueError(
                f"dev has {len(frame)} pairs with {frame.score.nunique()} distinct "
                "score(s); a Spearman to select on needs at least 20 pairs with "
                "varied scores"
            )
    except ValueError as err:
        raise ValueError(
            f"{err} (dev= sets the model-selection pairs: 'stsb', 'stsb-de', a "
            ".tsv/.csv file or a DataFrame with sentence1, sentence2, score; "
            "dev=None trains without selection)"
        ) from None
    frame = frame.iloc[: cfg.dev_rows]
    dev = tuple(frame[c].tolist() for c in ("sentence1", "sentence2", "score"))
    digest = hashlib.sha256(repr(dev).encode("utf-8")).hexdigest()[:16]
    name = source if isinstance(source, str) else "pairs"
    return cfg, {"dev": name, "pairs": len(frame), "sha256": digest}, dev


def _dev_frame(dev: Any) -> pd.DataFrame:
    """The pairs ``dev`` names or holds, read and checked as ``load_sts`` does."""
    columns = ["sentence1", "sentence2", "score"]
    if isinstance(dev, str) and dev.lower().endswith((".tsv", ".csv")):
        if not Path(dev).is_file():
            raise FileNotFoundError(f"dev={dev!r}: no such .tsv/.csv file")
        return load_sts("stsb", "dev", path=dev)
    if isinstance(dev, str):  # "stsb" or "stsb-<language>", as TrainConfig checked
        try:
            return load_sts("stsb", "dev", language=dev[5:] or None)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{err}\n(dev={dev!r} is needed for model selection every "
                "eval_steps; pass dev=None or eval_steps=None to train without it)"
            ) from err
    if not isinstance(dev, pd.DataFrame):
        if isinstance(dev, (dict, bytes)) or not isinstance(dev, Iterable):
            raise TypeError(f"dev must be scored pairs, got {type(dev).__name__}")
        dev = pd.DataFrame([tuple(row) for row in dev], columns=columns)
    if missing := [c for c in columns if c not in dev.columns]:
        raise ValueError(f"dev lacks column(s) {missing}: got {list(dev.columns)}")
    frame = dev[columns].reset_index(drop=True)
    for column in columns[:2]:
        check_texts(frame[column], f"dev {column}")
    return _checked(frame.copy(), "dev")
