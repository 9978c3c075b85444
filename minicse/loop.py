"""The training loop behind ``train_unsup`` / ``train_sup``.

:func:`train_step` is one SimCSE step (chapter 6 shows it verbatim):
embed the views, gather them across processes, InfoNCE, backward, AdamW.
:func:`fit` is the plain loop around it, over a small :class:`TrainState`:
batches, loss logging, model selection on the dev pairs and checkpoints. GradCache and
length groups are two other ways of computing the same embeddings and
gradients (:mod:`minicse.gradcache`, :mod:`minicse.batching`); the step only
picks one. Reference: Gao, Yao & Chen, 2021, arXiv:2104.08821, section 3.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from . import checkpoint as ckpt
from .batching import (
    Batch,
    batch_indices,
    length_groups,
    look_up_words,
    make_batch,
    num_workers,
)
from .distributed import DistInfo, barrier, gather_with_grad, no_sync, shard_batch
from .evaluate import sts_dev_metrics
from .gradcache import grad_cache_step
from .losses import info_nce_loss
from .utils import autocast, progress_bar_class

tqdm = progress_bar_class()


@dataclass
class TrainState:
    """What one run carries from step to step; all of it is checkpointed."""

    cfg: Any  # TrainConfig
    encoder: Any  # SentenceEncoder
    model: torch.nn.Module  # the encoder, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    info: DistInfo
    total: int  # optimizer steps in the run
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float | None = None
    best_step: int | None = None
    best_weights: dict[str, Tensor] | None = None  # on the CPU until written
    best_written: int | None = None  # step of the best model now in output_dir
    last_eval: int | None = None
    last_save: int | None = None
    checkpoint: Path | None = None
    run: dict[str, Any] = field(default_factory=dict)  # see identity()
    window: list[Tensor] = field(default_factory=list)  # losses not yet synced
    step_rng: dict[str, Any] | None = None  # RNG at the start of the current step
    sizes: list[int] | None = None  # rows per process (gathers skip a shape exchange)


def embed(state: TrainState, pieces: list[dict[str, Tensor]]) -> Tensor:
    """``(views * b, D)`` fp32 embeddings of the pieces (dropout on: two views);
    several pieces share one word-embedding lookup (:func:`look_up_words`)."""
    with autocast(state.info.device, state.cfg.precision):
        if len(pieces) > 1:
            pieces = look_up_words(state.encoder, pieces)
        return torch.cat([state.model(**piece).float() for piece in pieces])


def train_step(state: TrainState, batch: Batch) -> Tensor:
    """One optimizer step of SimCSE; returns the loss (on the device, no sync)."""
    cfg = state.cfg

    def loss_fn(embeddings: Tensor) -> Tensor:  # (views * b, D) in piece order
        if batch.restore is not None:  # back to [view 0 rows; view 1 rows; ...]
            embeddings = embeddings[batch.restore]
        views = embeddings.chunk(batch.views)  # (b, D) each, this process's rows
        if len(views) == 1:  # fixed mask: both views are the one pass
            views *= 2
        anchors, positives, *negatives = [
            gather_with_grad(v, state.sizes) for v in views
        ]
        return info_nce_loss(  # every anchor against all B gathered candidates
            anchors,
            positives,
            negatives[0] if negatives else None,
            temperature=cfg.temperature,
            hard_negative_weight=cfg.hard_negative_weight,
            symmetric=cfg.symmetric,
        )

    if cfg.grad_cache_chunk:  # the same gradients in the memory of one chunk
        loss = grad_cache_step(
            lambda piece: embed(state, [piece]),
            batch.pieces,
            loss_fn,
            no_sync=lambda: no_sync(state.model),
            scale=state.scaler.scale,  # the identity unless fp16
        )
    else:
        loss = loss_fn(embed(state, batch.pieces))
        state.scaler.scale(loss).backward()
    if cfg.max_grad_norm:
        state.scaler.unscale_(state.optimizer)
        params = state.encoder.parameters()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)
    return loss.detach()


# ----------------------------------------------------------------------------------
# Data: how the rows of each step (batching.batch_indices) become a Batch.
# ----------------------------------------------------------------------------------


def _batches(state: TrainState, rows: list[tuple[str, ...]]) -> Iterator[Batch]:
    """This process's :class:`Batch` of every step from ``state.step`` on.

    With ``num_workers > 0`` they are made ahead in a thread, which tokenizes
    with its own copy of the tokenizer (a tokenizer is not thread-safe).
    """
    cfg, info = state.cfg, state.info
    workers = num_workers(cfg, info.device)
    tokenizer = state.encoder.tokenizer
    tokenizer = copy.deepcopy(tokenizer) if workers else tokenizer
    groups = length_groups(cfg, info, state.encoder)

    def prepare(indices: list[int]) -> Batch:
        mine = [rows[i] for i in shard_batch(indices, info)]
        batch = make_batch(
            tokenizer,
            mine,
            cfg.max_length,
            groups,
            cfg.grad_cache_chunk,
            twice=not cfg.fixed_mask,
        )
        return batch.to(info.device)

    indices = batch_indices(len(rows), cfg, state.step, state.total)
    if not workers:
        yield from map(prepare, indices)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="minicse-tokenize") as pool:
        ahead = deque(
            pool.submit(prepare, i) for i in itertools.islice(indices, 2 * workers)
        )
        while ahead:
            batch = ahead.popleft().result()
            ahead.extend(pool.submit(prepare, i) for i in itertools.islice(indices, 1))
            yield batch


# ----------------------------------------------------------------------------------
# The loop: steps, loss records, evaluation, checkpoints.
# ----------------------------------------------------------------------------------


def fit(state: TrainState, rows: list[tuple[str, ...]], dev: Any) -> None:
    """Train from ``state.step`` to ``state.total``; log, evaluate, checkpoint.

    Losses stay on the device and are synced once per ``log_every`` steps, where
    a NaN or inf stops the run with the step it happened at.
    """
    cfg = state.cfg
    bar = tqdm(
        total=state.total,
        initial=state.step,
        desc=f"{cfg.objective} SimCSE",
        disable=not (cfg.progress and state.info.is_main),
        dynamic_ncols=True,
    )
    batches = _batches(state, rows)
    try:
        for batch in batches:
            state.step_rng = ckpt.rng_state()  # for a Ctrl-C inside the step
            state.window.append(_checked(train_step, state, batch))
            state.step += 1
            state.step_rng = None  # the step is complete
            bar.update()
            if len(state.window) == cfg.log_every:
                _flush(state, bar)
            if cfg.eval_steps and state.step % cfg.eval_steps == 0:
                evaluate(state, dev, bar)
            period = cfg.save_steps or cfg.eval_steps
            if cfg.output_dir and period and state.step % period == 0:
                save(state, cfg.output_dir)
    except FloatingPointError:  # NaN: the best model so far stays on disk
        _write_best(state)
        raise
    finally:
        batches.close()
        bar.close()


def _checked(step_fn: Any, state: TrainState, batch: Batch) -> Tensor:
    try:
        return step_fn(state, batch)
    except ValueError as err:  # the losses reject NaN/inf embeddings on CPU
        if "NaN" not in str(err):
            raise
        raise nan_error(state, state.step + 1) from err


def _flush(state: TrainState, bar: Any = None) -> None:
    """Sync the losses of the last steps: NaN check and one history record."""
    if not state.window:
        return
    values = torch.stack(state.window).tolist()  # the one host sync per window
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:  # name the first bad step, not the one that noticed
        raise nan_error(state, state.step - len(values) + bad[0] + 1)
    loss, lr = sum(values) / len(values), state.scheduler.get_last_lr()[0]
    state.history.append({"step": state.step, "loss": loss, "lr": lr})
    state.window.clear()
    if bar is not None:
        best = {} if state.best_score is None else {"best": f"{state.best_score:.2f}"}
        bar.set_postfix(loss=f"{loss:.4f}", **best)


def nan_error(state: TrainState, step: int) -> FloatingPointError:
    where = (
        f"the last good checkpoint is {state.checkpoint}"
        if state.checkpoint
        else "no checkpoint was saved (set output_dir)"
    )
    return FloatingPointError(
        f"the training loss became NaN or inf at step {step}; training stopped "
        f"and the best model was kept. {where}. Resume from it with resume=True "
        "and a lower learning_rate, max_grad_norm=1.0 or precision='fp32'"
    )


def _check_weights(state: TrainState) -> None:
    finite = torch.stack([p.isfinite().all() for p in state.encoder.parameters()])
    if not bool(finite.all()):
        raise nan_error(state, state.step)


def evaluate(state: TrainState, dev: Any, bar: Any = None) -> None:
    """Dev pairs' Spearman x100 on rank 0, at the run's precision; keep the best."""
    _flush(state, bar)
    encoder, cfg = state.encoder, state.cfg
    if state.info.is_main:
        # the run's precision, not encode's "auto" (an fp32 run evaluates in fp32)
        scorer = SimpleNamespace(
            encode=partial(encoder.encode, precision=cfg.precision)
        )
        try:
            metrics = sts_dev_metrics(scorer, *dev, batch_size=128)
        finally:
            encoder.train()
        score = metrics["dev"]
        state.history.append({"step": state.step, **metrics})
        if math.isfinite(score) and (
            state.best_score is None or score > state.best_score
        ):
            _new_best(state, score)
        if bar is not None and state.best_score is not None:
            bar.set_postfix(dev=f"{score:.2f}", best=f"{state.best_score:.2f}")
    state.last_eval = state.step
    barrier()


def _new_best(state: TrainState, score: float) -> None:
    """Record a new best model in memory (``output_dir`` gets it at the next save)."""
    _check_weights(state)  # a broken model never becomes the best one
    state.best_score, state.best_step = score, state.step
    weights = state.encoder.state_dict()
    state.best_weights = {
        k: v.detach().to("cpu", copy=True) for k, v in weights.items()
    }


def _write_best(state: TrainState) -> None:
    """Write the best model to ``output_dir`` if it is not there yet (rank 0):
    once per checkpoint at most, not at every new best (a slow disk, a Drive)."""
    best, folder = state.best_weights, state.cfg.output_dir
    if (
        not (folder and best and state.info.is_main)
        or state.best_written == state.best_step
    ):
        return
    current = {k: v.detach().clone() for k, v in state.encoder.state_dict().items()}
    state.encoder.load_state_dict(best)
    info = {"step": state.best_step, "dev": state.best_score}
    ckpt.save_best_model(state.encoder, folder, info)
    state.encoder.load_state_dict(current)
    state.best_written = state.best_step


def save(state: TrainState, folder: Any, rng: dict | None = None) -> None:
    """Write a checkpoint (rank 0) holding every rank's RNG state."""
    _flush(state)
    _check_weights(state)
    rngs = [rng or ckpt.rng_state()]
    if state.info.distributed:
        rngs = [None] * state.info.world_size
        torch.distributed.all_gather_object(rngs, rng or ckpt.rng_state())
    if state.info.is_main:
        _write_best(state)  # first: a checkpoint's best model is always on disk
        ckpt.save_checkpoint(
            folder, state.step, state.encoder, ckpt.resumable(state, rngs)
        )
    state.checkpoint = Path(folder) / f"{ckpt.PREFIX}{state.step}"
    state.last_save = state.step
    barrier()


def interrupted(state: TrainState) -> str:
    """Ctrl-C: checkpoint the last complete step; return how to resume."""
    import tempfile

    state.optimizer.zero_grad(set_to_none=True)
    rng = state.step_rng  # the RNG at the start of the unfinished step
    if state.scheduler.last_epoch > state.step:  # it finished after all
        state.step, rng = state.scheduler.last_epoch, None
    folder = state.cfg.output_dir or tempfile.mkdtemp(prefix="minicse-run-")
    save(state, folder, rng=rng)
    state.history.append({"step": state.step, "interrupted": str(state.checkpoint)})
    return (
        f"Training interrupted at step {state.step}/{state.total}; checkpoint saved "
        f"to {state.checkpoint}. The returned model has the weights of step "
        f"{state.step}. To continue, call train_{state.cfg.objective}(..., "
        f"output_dir={str(folder)!r}, resume=True) with the same data, or add "
        f"`--output-dir {folder} --resume` to the command line."
    )


def finish(state: TrainState, dev: Any) -> None:
    """Final evaluation and checkpoint, then load the best weights."""
    cfg = state.cfg
    _flush(state)
    if cfg.eval_steps and state.last_eval != state.step:
        evaluate(state, dev)
    if cfg.output_dir and state.last_save != state.step:
        save(state, cfg.output_dir)
    if state.best_weights is not None:
        _write_best(state)
        state.encoder.load_state_dict(state.best_weights)
    elif cfg.output_dir and state.best_step is not None:
        state.encoder.load_weights(cfg.output_dir)  # resumed: its best, on disk
    elif cfg.output_dir and state.info.is_main:
        ckpt.save_best_model(state.encoder, cfg.output_dir, {"step": state.step})
