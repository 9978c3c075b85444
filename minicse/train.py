"""Training: ``train_unsup``, ``train_sup``, :func:`make_state`, :func:`train_step`
and :func:`fit`, the loop that logs, selects on dev pairs and checkpoints. Reference:
Gao, Yao & Chen, 2021, arXiv:2104.08821, section 3 and appendix A. See chapters 6-7."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm  # the text bar: a notebook widget needs ipywidgets and a CDN

from . import checkpoint as ckpt
from . import distributed as dist
from .augment import set_dropout
from .batching import Batch, look_up_words, make_batch
from .config import TrainConfig, head_for
from .distributed import DistInfo, gather_with_grad, shard_batch
from .encoder import SentenceEncoder
from .evaluate import sts_dev_metrics
from .gradcache import grad_cache_step
from .inputs import read_inputs
from .losses import info_nce_loss
from .utils import NonFiniteError, amp_dtype, autocast, set_seed


def train_unsup(
    model: Any, sentences: Any, config: TrainConfig | None = None, **overrides: Any
) -> SentenceEncoder:
    """Unsupervised SimCSE: each sentence is its own positive under two dropout masks.

        loss = -1/B sum_i log softmax_j( cos(h_i, h'_j) / tau )[i]

    ``model``: a ``SentenceEncoder`` (trained in place) or a hub name, a path,
    ``"tiny"`` or ``"offline-minilm"``; ``sentences``: strings, ``"wiki1m"`` or a text
    file; ``overrides``: ``TrainConfig`` fields (``dev`` also takes scored pairs).
    Returns the encoder with the best dev weights, ``.selected_on`` and ``.history``
    (``{step, loss, lr}``, ``{step, dev, alignment, uniformity}``, ``{step,
    interrupted}``). Bad inputs raise before training. Reference: arXiv:2104.08821,
    eq. 1 and appendix A. See chapter 6.
    """
    return _train(model, *read_inputs("unsup", sentences, config, overrides))


def train_sup(
    model: Any, triplets: Any, config: TrainConfig | None = None, **overrides: Any
) -> SentenceEncoder:
    """Supervised SimCSE on NLI: entailment positives, contradiction hard negatives.

        loss_i = -log e^{s(h_i, h+_i)}
                 / sum_j (e^{s(h_i, h+_j)} + e^{s(h_i, h-_j) + w [i = j]})

    with ``s = cos / tau`` and ``w = hard_negative_weight``. ``triplets``: rows
    ``(sent0, sent1[, hard_neg])``, a DataFrame with those columns, ``"nli"`` or a
    .tsv/.csv file; the rest as :func:`train_unsup`. Reference: arXiv:2104.08821, eq. 5.
    See chapter 7.
    """
    return _train(model, *read_inputs("sup", triplets, config, overrides))


@dataclass
class TrainState:
    """What one run carries from step to step; all of it is checkpointed."""

    cfg: TrainConfig
    encoder: SentenceEncoder
    model: torch.nn.Module  # the encoder, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    info: DistInfo
    total: int  # optimizer steps in the run
    run: dict[str, Any]  # what a checkpoint must share to continue this run
    sizes: list[int]  # rows per process (gathers skip a shape exchange)
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float | None = None
    best_step: int | None = None
    best_weights: dict[str, Tensor] | None = None  # on the CPU until written
    best_written: int | None = None  # step of the best model now in output_dir
    last_eval: int | None = None
    last_save: int | None = None
    checkpoint: Path | None = None
    window: list[Tensor] = field(default_factory=list)  # losses not yet synced
    step_rng: dict[str, Any] | None = None  # RNG at the start of the current step


def make_state(
    encoder: SentenceEncoder, rows: list, cfg: TrainConfig, info: Any = None, dev=None
) -> TrainState:
    """The :class:`TrainState` a run starts from, as ``train_unsup`` builds it.

    The encoder on its device in train mode (DDP-wrapped under a launcher), AdamW
    (fused; no decay on biases and norms), the linear schedule over the run's steps
    and the gradient scaler (on for fp16 only). ``dev`` is the dev pairs' digest.
    """
    from transformers import get_linear_schedule_with_warmup

    info = dist.init_distributed(cfg.device) if info is None else info
    if cfg.dropout is not None:
        set_dropout(encoder, cfg.dropout)
    encoder = encoder.to(info.device).train()
    params = [p for p in encoder.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    groups = [(decay, cfg.weight_decay), ([p for p in params if p.ndim < 2], 0.0)]
    groups = [{"params": ps, "weight_decay": wd} for ps, wd in groups if ps]
    fast = {"fused": True} if info.device.type in ("cpu", "cuda") else {"foreach": True}
    optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate, **fast)
    total = cfg.total_steps(len(rows))
    warmup = math.ceil(cfg.warmup_ratio * total)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
    fp16 = amp_dtype(info.device, cfg.precision) == torch.float16
    scaler = torch.amp.GradScaler(info.device.type, enabled=fp16)
    run = {k: getattr(cfg, k) for k in ("objective", "batch_size", "seed")}
    run.update(rows=len(rows), world_size=info.world_size, dev=dev)
    model = dist.wrap_ddp(encoder, info)  # DDP under a launcher, else the encoder
    sizes = dist.shard_sizes(cfg.batch_size, info.world_size)  # rows per process
    return TrainState(
        cfg, encoder, model, optimizer, scheduler, scaler, info, total, run, sizes
    )


def embed(state: TrainState, batch: Batch) -> list[Tensor]:
    """One fp32 ``(b, D)`` tensor per view of the batch's rows (dropout on)."""
    return in_view_order(batch, forward(state, batch.pieces))


def forward(state: TrainState, pieces: list[dict[str, Tensor]]) -> Tensor:
    """``cat`` of the pieces' fp32 embeddings; one word lookup serves all pieces."""
    with autocast(state.info.device, state.cfg.precision):
        if len(pieces) > 1:  # the dense word-embedding gradient is built once
            pieces = look_up_words(state.encoder, pieces)
        return torch.cat([state.model(**piece).float() for piece in pieces])


def in_view_order(batch: Batch, embeddings: Tensor) -> list[Tensor]:
    """The pieces' ``(views * b, D)`` outputs as ``(b, D)`` per view, in row order."""
    if batch.restore is not None:
        embeddings = embeddings[batch.restore]
    views = list(embeddings.chunk(batch.views))
    return views * 2 if len(views) == 1 else views  # fixed mask: one pass, two views


def train_step(state: TrainState, batch: Batch) -> Tensor:
    """One optimizer step of SimCSE; returns the loss (on the device, no sync)."""
    cfg = state.cfg

    def loss_fn(views: list[Tensor]) -> Tensor:  # (b, D) each, this process's rows
        anchors, positives, *hard = [gather_with_grad(v, state.sizes) for v in views]
        hard = hard[0] if hard else None  # sup: the contradictions
        return info_nce_loss(  # every anchor against all B gathered candidates
            anchors, positives, hard, cfg.temperature, cfg.hard_negative_weight
        )

    if cfg.grad_cache_chunk:  # the same gradients in the memory of one chunk
        loss = grad_cache(state, batch, loss_fn)
    else:
        loss = loss_fn(embed(state, batch))
        state.scaler.scale(loss).backward()
    if cfg.max_grad_norm:
        state.scaler.unscale_(state.optimizer)
        torch.nn.utils.clip_grad_norm_(state.encoder.parameters(), cfg.max_grad_norm)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def grad_cache(state: TrainState, batch: Batch, loss_fn: Any) -> Tensor:
    """``loss_fn(embed(state, batch))``'s backward by GradCache, one piece at a time."""
    return grad_cache_step(
        lambda piece: forward(state, [piece]),
        batch.pieces,
        lambda embeddings: loss_fn(in_view_order(batch, embeddings)),
        no_sync=getattr(state.model, "no_sync", None),  # DDP only
        scale=state.scaler.scale,  # the identity unless fp16
    )


def fit(state: TrainState, rows: list[tuple[str, ...]], dev: Any) -> None:
    """Train from ``state.step`` to ``state.total``: log, evaluate, checkpoint.

    Losses stay on the device and are synced every ``log_every`` steps, where a NaN
    or inf stops the run naming the step it happened at.
    """
    cfg, info = state.cfg, state.info
    show, desc = cfg.progress and info.is_main, f"{cfg.objective} SimCSE"
    bar = tqdm(total=state.total, initial=state.step, desc=desc, disable=not show)
    tokenizer, groups = state.encoder.tokenizer, length_groups(cfg, info, state.encoder)
    chunk, twice = cfg.grad_cache_chunk, not cfg.fixed_mask
    try:
        for indices in batch_indices(len(rows), cfg, state.step, state.total):
            mine = [rows[i] for i in shard_batch(indices, info)]
            batch = make_batch(tokenizer, mine, cfg.max_length, groups, chunk, twice)
            batch = batch.to(info.device)
            state.step_rng = ckpt.rng_state()  # for a Ctrl-C inside the step
            try:
                state.window.append(train_step(state, batch))
            except NonFiniteError as err:  # the losses reject NaN embeddings on CPU
                raise ckpt.nan_error(state, state.step + 1) from err
            state.step, state.step_rng = state.step + 1, None
            bar.update()
            if len(state.window) == cfg.log_every:
                ckpt.flush(state, bar)
            if cfg.eval_steps and state.step % cfg.eval_steps == 0:
                evaluate(state, dev, bar)
            period = cfg.save_steps or cfg.eval_steps
            if cfg.output_dir and period and state.step % period == 0:
                ckpt.save(state, cfg.output_dir)
    except FloatingPointError:  # NaN: the best model so far stays on disk
        ckpt.write_best(state)
        raise
    finally:
        bar.close()


def batch_indices(rows: int, cfg: Any, start: int, total: int) -> Iterator[list[int]]:
    """Row indices of each global batch from step ``start`` on: a pure function of
    ``(seed, epoch)``, so the step number is the whole data position."""
    per_epoch, step = rows // cfg.batch_size, start  # full batches only
    while step < total:
        epoch, first = divmod(step, per_epoch)
        seeded = torch.Generator().manual_seed(cfg.seed + epoch)
        order = torch.randperm(rows, generator=seeded)
        for i in range(first, min(per_epoch, first + total - step)):
            yield order[i * cfg.batch_size : (i + 1) * cfg.batch_size].tolist()
            step += 1


def length_groups(cfg: Any, info: DistInfo, encoder: Any) -> int:
    """At most how many length-sorted forwards a plain step is split into.

    ``"auto"``: 8 on CPU (padding is pure waste there), 1 on CUDA/mps (one big matmul
    wins). Always 1 with GradCache (its chunks are sorted and padded on their own),
    under DDP (one forward per backward) and for left-padding tokenizers.
    """
    if (
        cfg.grad_cache_chunk
        or info.distributed
        or encoder.tokenizer.padding_side != "right"
    ):
        return 1
    auto = 8 if info.device.type == "cpu" else 1
    return auto if cfg.length_groups == "auto" else cfg.length_groups


def evaluate(state: TrainState, dev: Any, bar: Any = None) -> None:
    """Dev pairs' Spearman x100 on rank 0, at the run's precision; keep the best."""
    ckpt.flush(state, bar)
    encoder = state.encoder
    if state.info.is_main:
        try:  # the run's precision, not encode's "auto": fp32 runs evaluate in fp32
            metrics = sts_dev_metrics(encoder, *dev, precision=state.cfg.precision)
        finally:
            encoder.train()
        score = metrics["dev"]
        state.history.append({"step": state.step, **metrics})
        if math.isfinite(score) and (
            state.best_score is None or score > state.best_score
        ):
            ckpt.check_weights(state)  # a broken model never becomes the best one
            state.best_score, state.best_step = score, state.step
            weights = encoder.state_dict().items()
            state.best_weights = {
                k: v.detach().to("cpu", copy=True) for k, v in weights
            }
        if bar is not None and state.best_score is not None:
            bar.set_postfix(dev=f"{score:.2f}", best=f"{state.best_score:.2f}")
    state.last_eval = state.step
    dist.barrier()


def _train(
    model: Any, rows: list, cfg: TrainConfig, selected_on: dict, dev: Any
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
    info = dist.init_distributed(cfg.device)
    try:
        if cfg.batch_size < max(info.world_size, cfg.grad_cache_chunk or 0):
            raise ValueError(
                f"batch_size={cfg.batch_size} must be >= the {info.world_size} "
                f"processes and >= grad_cache_chunk={cfg.grad_cache_chunk}"
            )
        set_seed(cfg.seed)
        encoder = _as_encoder(model, cfg)
        encoder.selected_on = selected_on  # saved with the model
        state = make_state(encoder, rows, cfg, info, selected_on.get("sha256"))
        set_seed(cfg.seed + info.rank)  # different dropout masks on every rank
        if found is not None:  # the newest that loads (a damaged one is skipped)
            ckpt.resume(state, cfg.output_dir)
        try:
            fit(state, rows, dev)
            finish(state, dev)
        except KeyboardInterrupt:
            message = ckpt.interrupted(state)
            if info.is_main:
                print(message, file=sys.stderr)
        encoder.history = state.history
        return encoder
    finally:
        if owns_group:
            dist.cleanup_distributed()


def finish(state: TrainState, dev: Any) -> None:
    """Final evaluation and checkpoint, then load the best weights."""
    cfg = state.cfg
    ckpt.flush(state)
    if cfg.eval_steps and state.last_eval != state.step:
        evaluate(state, dev)
    if cfg.output_dir and state.last_save != state.step:
        ckpt.save(state, cfg.output_dir)
    if state.best_weights is not None:
        ckpt.write_best(state)
        state.encoder.load_state_dict(state.best_weights)
    elif cfg.output_dir and state.best_step is not None:
        state.encoder.load_weights(cfg.output_dir)  # resumed: its best, on disk
    elif cfg.output_dir and state.info.is_main:
        ckpt.save_best_model(state.encoder, cfg.output_dir, {"step": state.step})


def _as_encoder(model: Any, cfg: TrainConfig) -> SentenceEncoder:
    """``model``, or the encoder its name builds (the model keeps its max_length)."""
    if isinstance(model, SentenceEncoder):
        return model
    if isinstance(model, (str, os.PathLike)):
        return SentenceEncoder.from_pretrained(
            str(model), pooling=cfg.pooling, mlp=head_for(cfg)
        )
    raise TypeError(
        "model must be a SentenceEncoder, a hub name, a local path, 'tiny' or "
        f"'offline-minilm', got {type(model).__name__}"
    )
