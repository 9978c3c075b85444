"""The training loop behind ``train_unsup`` / ``train_sup``.

:class:`_Run` holds one run's state (model, optimizer, scheduler, data position,
history, best weights) and :func:`_train_step` is one optimizer step. Kept apart
from :mod:`minicse.train` (config, input checks, entry points) to keep both
modules short. See chapter 6 for a walk through the step.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from . import checkpoint as ckpt
from .data import load_sts
from .distributed import DistInfo, barrier, gather_with_grad, no_sync, shard_batch
from .distributed import wrap_ddp as _wrap_ddp
from .evaluate import score_sts_pairs
from .gradcache import sort_by_length, trim_padding
from .losses import info_nce_loss
from .utils import amp_dtype, autocast


def _load_dev(cfg: Any) -> tuple[list[str], list[str], list[float]]:
    """STS-B dev pairs for model selection (before training, so errors come first)."""
    try:
        frame = load_sts("stsb", "dev", max_rows=cfg.dev_rows)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{err}\n(STS-B dev is needed for model selection every eval_steps; "
            "pass eval_steps=None to train without it)"
        ) from err
    return (
        frame["sentence1"].tolist(),
        frame["sentence2"].tolist(),
        frame["score"].tolist(),
    )


def _optimizer(encoder: torch.nn.Module, cfg: Any, device: torch.device):
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


def _prefetch(fn: Any, items: Iterator, workers: int) -> Iterator:
    """``map(fn, items)``, computed up to ``2 * workers`` items ahead in a thread."""
    if workers == 0:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minicse-tokenize")
    try:
        queue = deque(pool.submit(fn, x) for x in itertools.islice(items, 2 * workers))
        while queue:
            result = queue.popleft().result()
            queue.extend(pool.submit(fn, x) for x in itertools.islice(items, 1))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _length_groups(cfg: Any, info: DistInfo, encoder: torch.nn.Module) -> int:
    """At most how many length-sorted groups the plain step's forward is split into.

    ``"auto"``: 8 on CPU (padding is pure waste there: ~32 % of a random wiki1m
    batch's positions, ~3 % in 8 groups cut by :func:`length_split`), 1 on
    CUDA/mps (one big matmul wins). Always 1 with GradCache (each
    chunk is tokenized, so padded, on its own), under ``torchrun`` (DDP expects
    one forward per backward) and for left-padding tokenizers.
    """
    if cfg.grad_cache_chunk or info.distributed:
        return 1
    if getattr(encoder.tokenizer, "padding_side", "right") != "right":
        return 1
    if cfg.length_groups == "auto":
        return 8 if info.device.type == "cpu" else 1
    return cfg.length_groups


def length_split(lengths: list[int], groups: int) -> list[int]:
    """Sizes of at most ``groups`` consecutive groups of the ascending ``lengths``
    that pad the fewest positions (``sum(size * longest)``), by dynamic programming.

    Cuts only fall where the length changes: cutting inside a run of equal lengths
    never pads less. On random wiki1m batches (``[x; x]``, 128 rows, max 32
    tokens) 4 such groups pad 8.2 % of positions, 4 equal-sized groups 12.5 %.

    Example:
        >>> length_split([3, 3, 3, 3, 3, 3, 9, 9], 2)
        [6, 2]
        >>> length_split([5, 5, 5], 4)  # one group: nothing to gain
        [3]
    """
    cuts = [0] + [i for i in range(1, len(lengths)) if lengths[i] != lengths[i - 1]]
    cuts.append(len(lengths))
    # best[b]: (padded positions, group sizes) covering lengths[: cuts[b]]
    best: list[tuple[float, list[int]]] = [(0, [])] + [(math.inf, [])] * (len(cuts) - 1)
    answer = (math.inf, [])
    for _ in range(groups):  # one more group per round
        best = [(math.inf, [])] + [
            min(
                (
                    best[a][0] + (cuts[b] - cuts[a]) * lengths[cuts[b] - 1],
                    best[a][1] + [cuts[b] - cuts[a]],
                )
                for a in range(b)
            )
            for b in range(1, len(cuts))
        ]
        answer = min(answer, best[-1], key=lambda x: x[0])  # ties: fewer groups
    return answer[1]


def _num_workers(cfg: Any, device: torch.device) -> int:
    """Batches tokenized ahead in a thread; ``"auto"``: 0 on CPU, 1 elsewhere.

    On CPU a step takes seconds and tokenizing milliseconds, and the extra thread
    slowed 2-core steps by ~10 %; on a GPU tokenizing is as slow as a step.
    """
    if cfg.num_workers == "auto":
        return 0 if device.type == "cpu" else 1
    return cfg.num_workers


def _train_step(run: _Run, chunks: list[dict[str, Any]]) -> Tensor:
    """Forward, InfoNCE, backward and optimizer update; the loss stays on device."""
    sizes = [chunk["rows"] for chunk in chunks]

    def loss_fn(embeddings: Tensor) -> Tensor:
        return run.loss(embeddings, sizes)

    if run.cfg.grad_cache_chunk:
        from .gradcache import grad_cache_step

        loss = grad_cache_step(
            run.embed, chunks, loss_fn, no_sync=lambda: no_sync(run.model)
        )
    else:
        loss = loss_fn(run.embed(chunks[0]))
        run.scaler.scale(loss).backward()
        loss = loss.detach()
    run.update()
    return loss


class _Run:
    """One training run: model, optimizer, data position, history, best model."""

    def __init__(self, encoder, rows, cfg, info: DistInfo, dev) -> None:
        self.cfg, self.info, self.rows, self.dev = cfg, info, rows, dev
        self.encoder, self.device = encoder.to(info.device).train(), info.device
        self.groups = _length_groups(cfg, info, encoder)
        self.model = _wrap_ddp(encoder, info)
        self.steps_per_epoch = len(rows) // cfg.batch_size  # full batches only
        self.total = cfg.max_steps or cfg.num_epochs * self.steps_per_epoch
        self.optimizer = _optimizer(encoder, cfg, self.device)
        warmup = max(cfg.warmup_steps, math.ceil(cfg.warmup_ratio * self.total))
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, warmup, self.total
        )
        fp16 = amp_dtype(self.device, cfg.precision) == torch.float16
        if fp16 and cfg.grad_cache_chunk:
            raise ValueError(
                "grad_cache_chunk needs precision 'bf16' or 'fp32', not fp16"
            )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.lock = threading.Lock()  # the tokenizer is not thread-safe
        self.window = torch.zeros(cfg.log_every, device=self.device)  # recent losses
        self.pending, self.step, self.history = 0, 0, []
        self.best_score, self.best_step, self.best_weights = -math.inf, None, None
        self.last_eval = self.last_save = self.checkpoint = self.step_rng = None
        self.bar = None

    # -- data ------------------------------------------------------------------
    def batches(self) -> Iterator[list[int]]:
        """Row indices of each global batch from ``self.step`` on: a pure function
        of ``(seed, epoch)``, so the step number is the whole data position."""
        size, step = self.cfg.batch_size, self.step
        while step < self.total:
            epoch, first = divmod(step, self.steps_per_epoch)
            generator = torch.Generator().manual_seed(self.cfg.seed + epoch)
            order = torch.randperm(len(self.rows), generator=generator)
            for i in range(first, min(self.steps_per_epoch, first + self.total - step)):
                yield order[i * size : (i + 1) * size].tolist()
                step += 1

    def prepare(self, indices: list[int]) -> list[dict[str, Any]]:
        """This rank's rows of a global batch, tokenized in chunks, on device."""
        rows = [self.rows[i] for i in shard_batch(indices, self.info)]
        size = self.cfg.grad_cache_chunk or len(rows)
        return [self._tokenize(rows[i : i + size]) for i in range(0, len(rows), size)]

    def _tokenize(self, rows: list[tuple[str, ...]]) -> dict[str, Any]:
        texts = [row[view] for view in range(len(rows[0])) for row in rows]
        with self.lock:
            inputs = self.encoder.tokenize(texts, max_length=self.cfg.max_length)
        if self.groups > 1:
            return self._group(inputs, len(rows))
        return {"inputs": self._to_device(inputs), "rows": len(rows)}

    def _group(self, inputs: dict[str, Tensor], rows: int) -> dict[str, Any]:
        """All ``views * rows`` rows (unsup: ``[x; x]``) sorted by length, cut
        into ``self.groups`` groups, each trimmed to its own longest row."""
        if self.cfg.objective == "unsup":
            inputs = {k: torch.cat([v, v]) for k, v in inputs.items()}  # (2b, T)
        ordered, restore = sort_by_length(inputs)
        sizes = length_split(ordered["attention_mask"].sum(1).tolist(), self.groups)
        keys, parts = list(ordered), [v.split(sizes) for v in ordered.values()]
        groups = [
            self._to_device(trim_padding(dict(zip(keys, group, strict=True))))
            for group in zip(*parts, strict=True)
        ]
        return {"groups": groups, "restore": restore.to(self.device), "rows": rows}

    def _to_device(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.device.type == "cuda":  # page-locked: the copy overlaps compute
            inputs = {k: v.pin_memory() for k, v in inputs.items()}
        return {k: v.to(self.device, non_blocking=True) for k, v in inputs.items()}

    # -- one step --------------------------------------------------------------
    def embed(self, chunk: dict[str, Any]) -> Tensor:
        """``(views * rows, D)`` embeddings; unsup encodes ``[x; x]`` (two masks).

        A grouped chunk (see :meth:`_group`) runs one forward per length group;
        the rows are put back in batch order, so the loss sees the same batch.
        """
        if "groups" in chunk:
            with autocast(self.device, self.cfg.precision):
                parts = [self.model(**g).float() for g in chunk["groups"]]
            return torch.cat(parts)[chunk["restore"]]  # (views * b, D)
        inputs = chunk["inputs"]
        if self.cfg.objective == "unsup":
            inputs = {k: torch.cat([v, v]) for k, v in inputs.items()}  # (2b, T)
        with autocast(self.device, self.cfg.precision):
            return self.model(**inputs).float()  # (views * b, D)

    def loss(self, embeddings: Tensor, sizes: list[int]) -> Tensor:
        """InfoNCE over the views of every chunk, gathered across processes."""
        views = len(embeddings) // sum(sizes)
        parts, offset = [[] for _ in range(views)], 0
        for rows in sizes:  # chunk layout: [view 0 rows; view 1 rows; ...]
            for view in range(views):
                parts[view].append(embeddings[offset + view * rows :][:rows])
            offset += views * rows
        anchors, positives, *negatives = [gather_with_grad(torch.cat(p)) for p in parts]
        return info_nce_loss(
            anchors,
            positives,
            negatives[0] if negatives else None,
            temperature=self.cfg.temperature,
            hard_negative_weight=self.cfg.hard_negative_weight,
            symmetric=self.cfg.symmetric,
        )

    def update(self) -> None:
        if self.cfg.max_grad_norm:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(
                self.encoder.parameters(), self.cfg.max_grad_norm
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    # -- the loop --------------------------------------------------------------
    def fit(self) -> None:
        """Train from ``self.step`` to ``self.total``; log, evaluate, checkpoint."""
        cfg = self.cfg
        self.bar = tqdm(
            total=self.total,
            initial=self.step,
            desc=f"{cfg.objective} SimCSE",
            disable=not (cfg.progress and self.info.is_main),
            dynamic_ncols=True,
        )
        workers = _num_workers(cfg, self.device)
        batches = _prefetch(self.prepare, self.batches(), workers)
        try:
            for chunks in batches:
                self.step_rng = ckpt.rng_state()  # for a Ctrl-C inside the step
                loss = self._step(chunks)
                self.window[self.pending] = loss  # no host sync here
                self.pending += 1
                self.step += 1
                self.step_rng = None  # the step is complete
                self.bar.update()
                self._periodic()
        finally:
            batches.close()
            self.bar.close()
            self.bar = None

    def _step(self, chunks: list[dict[str, Any]]) -> Tensor:
        try:
            return _train_step(self, chunks)
        except ValueError as err:  # losses.py rejects NaN/inf embeddings
            if "NaN" not in str(err):
                raise
            raise self._nan_error(self.step + 1) from err

    def _periodic(self) -> None:
        cfg = self.cfg
        if self.pending == cfg.log_every:
            self.flush()
        if cfg.eval_steps and self.step % cfg.eval_steps == 0:
            self.evaluate()
        period = cfg.save_steps or cfg.eval_steps
        if cfg.output_dir and period and self.step % period == 0:
            self.save(cfg.output_dir)

    def flush(self) -> None:
        """Sync the losses of the last steps: NaN check and one history record."""
        if not self.pending:
            return
        values = self.window[: self.pending].tolist()  # the one host sync
        if not all(math.isfinite(v) for v in values):
            raise self._nan_error(self.step)
        loss = sum(values) / len(values)
        lr = self.scheduler.get_last_lr()[0]
        self.history.append({"step": self.step, "loss": loss, "lr": lr})
        self.pending = 0
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", dev=f"{self.best_score:.2f}")

    def _nan_error(self, step: int) -> FloatingPointError:
        values = self.window[: self.pending].tolist()
        bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
        if bad:  # name the first bad step, not the one that noticed
            step = self.step - self.pending + bad[0] + 1
        where = (
            f"the last good checkpoint is {self.checkpoint}"
            if self.checkpoint
            else "no checkpoint was saved (set output_dir)"
        )
        return FloatingPointError(
            f"the training loss became NaN or inf at step {step}; training stopped "
            f"and the best model was kept. {where}. Resume from it with "
            "resume=True and a lower learning_rate, max_grad_norm=1.0 or "
            "precision='fp32'"
        )

    def _check_weights(self) -> None:
        finite = torch.stack([p.isfinite().all() for p in self.encoder.parameters()])
        if not bool(finite.all()):
            raise self._nan_error(self.step)

    # -- model selection and checkpoints --------------------------------------
    def evaluate(self) -> None:
        """STS-B dev Spearman x100 on rank 0; keep the weights if they are best."""
        self.flush()
        if self.info.is_main:
            sentences1, sentences2, scores = self.dev
            self.encoder.eval()
            try:
                with self.lock:
                    score = float(
                        score_sts_pairs(
                            self.encoder, sentences1, sentences2, scores, batch_size=128
                        )
                    )
            finally:
                self.encoder.train()
            self.history.append({"step": self.step, "dev": score})
            if math.isfinite(score) and score > self.best_score:
                self._new_best(score)
            if self.bar is not None:
                self.bar.set_postfix(dev=f"{score:.2f}", best=f"{self.best_score:.2f}")
        self.last_eval = self.step
        barrier()

    def _new_best(self, score: float) -> None:
        self._check_weights()  # a broken model never becomes the best one
        self.best_score, self.best_step = score, self.step
        self.best_weights = {
            k: v.detach().to("cpu", copy=True)
            for k, v in self.encoder.state_dict().items()
        }
        if self.cfg.output_dir:
            with self.lock:
                ckpt.save_best_model(
                    self.encoder, self.cfg.output_dir, {"step": self.step, "dev": score}
                )

    def save(self, folder: str | os.PathLike, rng: dict | None = None) -> None:
        """Write a checkpoint (rank 0), with every rank's RNG state."""
        self.flush()
        self._check_weights()
        rngs = [rng or ckpt.rng_state()]
        if self.info.distributed:
            gathered = [None] * self.info.world_size
            torch.distributed.all_gather_object(gathered, rngs[0])
            rngs = gathered
        if self.info.is_main:
            with self.lock:
                ckpt.save_checkpoint(
                    folder,
                    self.step,
                    self.encoder,
                    self._state(rngs),
                    self.best_weights,
                )
        self.checkpoint = Path(folder) / f"{ckpt.PREFIX}{self.step}"
        self.last_save = self.step
        barrier()

    def _state(self, rngs: list[dict]) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rngs,
            "best_score": self.best_score,
            "best_step": self.best_step,
            "last_eval": self.last_eval,
            "history": self.history,
            "run": self._identity(),
        }

    def _identity(self) -> dict[str, Any]:
        """What must match for a checkpoint to continue this run exactly."""
        return {
            "objective": self.cfg.objective,
            "batch_size": self.cfg.batch_size,
            "seed": self.cfg.seed,
            "rows": len(self.rows),
        }

    def restore(self, folder: Path) -> None:
        """Continue from checkpoint ``folder``: weights, optimizer, RNG, position."""
        state, best = ckpt.load_checkpoint(folder, self.encoder)
        if state["run"] != self._identity():
            raise ValueError(
                f"checkpoint {folder} belongs to a run with {state['run']}, this one "
                f"has {self._identity()}; resume needs the same data, batch_size and "
                "seed (or use a new output_dir)"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        ckpt.set_rng_state(rngs[min(self.info.rank, len(rngs) - 1)])
        self.step, self.history = state["step"], list(state["history"])
        self.best_score, self.best_step = state["best_score"], state["best_step"]
        self.last_eval, self.best_weights = state["last_eval"], best
        self.last_save, self.checkpoint = self.step, folder

    def interrupted(self) -> str:
        """Ctrl-C: checkpoint the last complete step; return how to resume."""
        self.optimizer.zero_grad(set_to_none=True)
        rng = self.step_rng  # the RNG at the start of the unfinished step
        if self.scheduler.last_epoch > self.step:  # it finished after all
            self.step, rng = self.scheduler.last_epoch, None
        folder = self.cfg.output_dir or tempfile.mkdtemp(prefix="minicse-run-")
        self.save(folder, rng=rng)
        self.history.append({"step": self.step, "interrupted": str(self.checkpoint)})
        return (
            f"Training interrupted at step {self.step}/{self.total}; checkpoint "
            f"saved to {self.checkpoint}. The returned model has the weights of step "
            f"{self.step}. To continue, call train_{self.cfg.objective}(..., "
            f"output_dir={str(folder)!r}, resume=True) with the same data, or add "
            f"`--output-dir {folder} --resume` to the command line."
        )

    def finish(self) -> None:
        """Final evaluation and checkpoint, then load the best weights."""
        self.flush()
        if self.cfg.eval_steps and self.last_eval != self.step:
            self.evaluate()
        if self.cfg.output_dir and self.last_save != self.step:
            self.save(self.cfg.output_dir)
        if self.best_weights is not None:
            self.encoder.load_state_dict(self.best_weights)
        elif self.cfg.output_dir and self.info.is_main:
            ckpt.save_best_model(self.encoder, self.cfg.output_dir, {"step": self.step})
