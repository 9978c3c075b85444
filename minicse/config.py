"""``TrainConfig``, every setting of a SimCSE run (defaults: the paper's unsupervised
values, arXiv:2104.08821 appendix A; ``sh:`` marks SimCSE's ``run_unsup_example.sh``),
and the presets that size one. See chapters 1, 6 and 7."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from .pooling import MLP_MODES, check_head
from .utils import PRECISIONS, check_choice, check_int, check_number, env_flag

_OBJECTIVES = ("unsup", "sup")
# supervised SimCSE differs only here (run_sup_example.sh: batch 128 x 4 GPUs)
_SUP_DEFAULTS = dict(batch_size=512, learning_rate=5e-5, num_epochs=3)


@dataclass
class TrainConfig:
    """Every setting of a SimCSE run, checked when made: ``unsup(**kw)``, ``sup(**kw)``
    or ``from_preset(name, objective, **kw)``. Each field's comment is its documentation
    (and its ``--flag``'s help). See chapters 6 and 7."""

    objective: str = "unsup"  # "unsup": dropout views, "sup": NLI triplets
    batch_size: int = 64  # global, split over processes; sh: 64
    learning_rate: float = 3e-5  # AdamW peak, decayed linearly to 0; sh: 3e-5
    num_epochs: int = 1  # passes over the data (unless max_steps); sh: 1
    max_length: int = 32  # truncation of training rows (never in evaluation); sh: 32
    temperature: float = 0.05  # InfoNCE temperature tau; sh: 0.05
    pooling: str = "cls"  # the pooler of a model given by name; sh: cls
    mlp: str | None = "auto"  # auto: unsup cls "train", sup cls "always" (head_for)
    hard_negative_weight: float = 0.0  # log(alpha) on hard negatives (sup); SimCSE: 0
    dropout: float | None = None  # every dropout rate; None: the model's (BERT: 0.1)
    fixed_mask: bool = False  # unsup: both views share one dropout mask (Table 3)
    max_steps: int | None = None  # optimizer steps; None: num_epochs epochs
    warmup_ratio: float = 0.0  # share of the steps of linear warm-up; HF: 0
    weight_decay: float = 0.0  # AdamW's, not on biases and LayerNorm; HF: 0
    max_grad_norm: float | None = 1.0  # clip; HF: 1.0 (an official N-GPU run: N)
    eval_steps: int | None = 125  # dev evaluation period (and at the end); sh: 125
    dev: str | None = "stsb"  # select on stsb, stsb-<language>, a .tsv/.csv or None
    dev_rows: int | None = None  # only the first N dev pairs; None: all
    seed: int = 42  # Python, NumPy, torch and the data order; sh: 42
    precision: str = "auto"  # auto: bf16/fp16 where fast, else fp32; sh: --fp16
    device: str = "auto"  # auto, cpu, cuda, cuda:1 or mps
    output_dir: str | None = None  # best model and checkpoints; None: memory only
    save_steps: int | None = None  # checkpoint period; None: at each evaluation
    resume: bool = False  # continue from the newest checkpoint in output_dir
    grad_cache_chunk: int | None = None  # GradCache rows per chunk; same gradients
    length_groups: int | str = "auto"  # length-sorted forwards; auto: 8 CPU, else 1
    log_every: int = 10  # steps between loss records (host syncs)
    progress: bool = True  # show a tqdm progress bar

    def __post_init__(self) -> None:
        _check_config(self)

    def total_steps(self, rows: int) -> int:
        """Optimizer steps over ``rows`` training rows: ``max_steps`` or full epochs."""
        return self.max_steps or self.num_epochs * (rows // self.batch_size)

    @classmethod
    def unsup(cls, **overrides: Any) -> TrainConfig:
        """Unsupervised SimCSE defaults plus ``overrides``."""
        return _build(cls, {"objective": "unsup", **overrides})

    @classmethod
    def sup(cls, **overrides: Any) -> TrainConfig:
        """Supervised SimCSE defaults (batch 512, lr 5e-5, 3 epochs), ``overrides``."""
        return _build(cls, {**_SUP_DEFAULTS, **overrides, "objective": "sup"})

    @classmethod
    def from_preset(
        cls, name: str | Preset | None = None, objective: str = "unsup", **kw: Any
    ) -> TrainConfig:
        """:func:`get_preset` ``(name)``'s sizes for ``objective``, then ``kw``."""
        check_choice(objective, "objective", _OBJECTIVES)
        preset = name if isinstance(name, Preset) else get_preset(name)
        sizes = {**getattr(preset, objective), "dev_rows": preset.sts_rows}
        return getattr(cls, objective)(**{**sizes, **kw})


def _build(cls: type, values: dict[str, Any]) -> TrainConfig:
    """``cls(**values)``, or a TypeError that lists the valid fields."""
    known = sorted(f.name for f in fields(cls))
    if unknown := sorted(set(values) - set(known)):
        args = f"{values.get('preset')!r}, {values.get('objective', 'unsup')!r}"
        fix = f"; for a preset's sizes pass config=TrainConfig.from_preset({args})"
        hint = fix if "preset" in unknown else ""  # train_sup(..., preset="cpu")
        raise TypeError(f"unknown TrainConfig field(s) {unknown}; valid: {known}{hint}")
    return cls(**values)


# what an annotation leaves open: an int's minimum (else 1), a float's range (or finite)
_BOUNDS = dict(seed=0, learning_rate="> 0", temperature="> 0", max_grad_norm="> 0")
_BOUNDS |= dict(weight_decay=">= 0", warmup_ratio="in [0, 1)", dropout="in [0, 1)")
_CHOICES = dict(objective=_OBJECTIVES, mlp=("auto", *MLP_MODES), precision=PRECISIONS)


def _check_config(cfg: TrainConfig) -> None:
    """Raise a clear error for an invalid field, before anything is loaded."""
    from .data import STSB_LANGUAGES

    for f in fields(cfg):
        name, value, kind = f.name, getattr(cfg, f.name), f.type.removesuffix(" | None")
        optional = kind != f.type
        if name in _CHOICES:
            check_choice(value, name, _CHOICES[name])
        elif kind == "bool" and not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")
        elif kind.startswith("int"):  # "int | str": a count or "auto"
            check_int(value, name, _BOUNDS.get(name, 1), optional, kind != "int")
        elif kind == "float":
            check_number(value, name, _BOUNDS.get(name), optional)
    check_head(cfg.pooling, None if cfg.mlp == "auto" else cfg.mlp)  # and pooling
    if cfg.fixed_mask and cfg.objective != "unsup":  # sup's views: other sentences
        raise ValueError("fixed_mask=True is an unsupervised control: drop it for sup")
    if (cfg.resume or cfg.save_steps) and not cfg.output_dir:
        what = "resume=True" if cfg.resume else f"save_steps={cfg.save_steps}"
        raise ValueError(f"{what} needs output_dir, the folder that holds checkpoints")
    if isinstance(cfg.dev, os.PathLike):
        cfg.dev = os.fspath(cfg.dev)  # a string: the config stays JSON, as keys need
    dev = cfg.dev if isinstance(cfg.dev, str) else ""
    named = dev in ("stsb", *(f"stsb-{language}" for language in STSB_LANGUAGES))
    if cfg.dev is not None and not (named or dev.lower().endswith((".tsv", ".csv"))):
        raise (ValueError if dev else TypeError)(
            f"dev={cfg.dev!r} must be 'stsb', 'stsb-<language>' (language in "
            f"{STSB_LANGUAGES}), a .tsv/.csv file or None; pass pairs as dev=..."
        )
    out = cfg.output_dir
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"output_dir must be a folder path, got {type(out).__name__}")
    if out is not None and Path(out).expanduser().is_file():
        raise ValueError(f"output_dir={str(out)!r} is an existing file, not a folder")


def head_for(cfg: TrainConfig) -> str | None:
    """The MLP mode ``cfg.mlp`` stands for (``"auto"``: SimCSE's combinations)."""
    if cfg.mlp == "auto" and cfg.pooling == "cls":  # unsup: trained, then dropped
        return "train" if cfg.objective == "unsup" else "always"
    return None if cfg.mlp == "auto" else cfg.mlp


@dataclass(frozen=True)
class Preset:
    """A run's size: model, rows (``None``: all), TrainConfig fields per objective."""

    name: str  # "smoke" (CI, seconds), "cpu" (a laptop, minutes) or "gpu" (a T4)
    model: str  # for from_pretrained: "tiny", "offline-minilm" or a hub name
    corpus_rows: int | None = None  # sentences of the unsupervised corpus to train on
    triplet_rows: int | None = None  # NLI triplets to train on
    sts_rows: int | None = None  # rows of each STS file used in evaluation
    unsup: dict[str, Any] = field(default_factory=dict)  # TrainConfig.unsup(**unsup)
    sup: dict[str, Any] = field(default_factory=dict)  # TrainConfig.sup(**sup)
    sizes: str = ""  # the preset whose counts these are (get_preset); "": name

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", self.sizes or self.name)

    def size(self, *, smoke: Any, cpu: Any, gpu: Any) -> Any:
        """The value for this preset's sizes (``smoke``: ``MINICSE_SIZES=smoke``)."""
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
        corpus_rows=11_914,  # the data folder's counts: the hub files' first rows
        triplet_rows=5_881,
        unsup=dict(batch_size=64, max_steps=100, eval_steps=25),  # dev flat after 100
        sup=dict(batch_size=64, num_epochs=1, eval_steps=30),
    ),
    "gpu": Preset(
        name="gpu",
        model="bert-base-uncased",  # the paper's main encoder; all rows (None)
        # each about 16 T4 minutes; max_steps=None: the paper's 15,625 and 1,614 steps
        unsup=dict(batch_size=64, max_steps=3_500, eval_steps=125),
        # batch 512 in a 16 GB GPU: GradCache, 128 rows at a time (same gradients)
        sup=dict(batch_size=512, max_steps=375, eval_steps=125, grad_cache_chunk=128),
    ),
}
# what MINICSE_SIZES takes from the sizes preset: steps and the rate they need
SIZE_FIELDS = ("batch_size", "max_steps", "num_epochs", "eval_steps", "learning_rate")


def get_preset(name: str | None = None, sizes: str | None = None) -> Preset:
    """Preset ``name`` (None: ``$MINICSE_PRESET``, else auto: ``gpu`` with CUDA, else
    ``cpu``) at the counts of ``sizes`` (None: ``$MINICSE_SIZES``, else ``name``): its
    rows and ``SIZE_FIELDS``; the model and code paths stay ``name``'s, GradCache in
    as many chunks per batch. See chapter 1."""
    name = name if name is not None else env_flag("MINICSE_PRESET") or "auto"
    check_choice(name, "preset", ("auto", *PRESETS))
    auto = "gpu" if torch.cuda.is_available() else "cpu"
    preset = PRESETS[auto if name == "auto" else name]
    sizes = sizes if sizes is not None else env_flag("MINICSE_SIZES") or preset.name
    check_choice(sizes, "sizes (MINICSE_SIZES)", tuple(PRESETS))
    if sizes == preset.name:
        return preset
    small = PRESETS[sizes]
    new = {k: getattr(small, k) for k in ("corpus_rows", "triplet_rows", "sts_rows")}
    for objective in _OBJECTIVES:
        own, at = getattr(preset, objective), getattr(small, objective)
        new[objective] = {k: v for k, v in own.items() if k not in SIZE_FIELDS}
        new[objective] |= {k: v for k, v in at.items() if k in SIZE_FIELDS}
        if own.get("grad_cache_chunk"):  # the same chunks per batch, at least two
            chunks = max(2, own["batch_size"] // own["grad_cache_chunk"])
            new[objective]["grad_cache_chunk"] = max(1, at["batch_size"] // chunks)
    return replace(preset, **new, sizes=sizes)


T4_TFLOPS = 8.0  # assumed sustained on Colab's T4 (benchmarks/README.md, section 6)
_SHAPES = {  # (layers, hidden, intermediate) of each preset's model
    "bert-base-uncased": (12, 768, 3072),
    "offline-minilm": (6, 384, 1536),
    "tiny": (2, 64, 256),
}
# padded positions per row (measured: benchmarks/gpu_estimate.py)
TOKENS_PER_ROW = {"unsup": 32.0, "sup": 20.0, "dev": 17.0}
_HUB_ROWS = {"unsup": 1_000_000, "sup": 275_601}  # wiki1m, nli_for_simcse.csv


def matmul_params(layers: int, hidden: int, intermediate: int) -> int:
    """Weights a BERT multiplies a token by (no embeddings): ``L (4 H^2 + 2 H I)``."""
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
    """Minutes of ``TrainConfig.from_preset(preset, objective, **overrides)`` at
    ``tflops`` (a name: that preset at its own sizes): its steps' :func:`step_flops`
    (GradCache x 4/3) and its STS-B dev forwards. Method and figures:
    benchmarks/README.md, section 6 (gpu sup: 16.4). See chapter 6.
    """
    chosen = preset if isinstance(preset, Preset) else get_preset(preset, preset)
    check_number(tflops, "tflops", "> 0")
    if (shape := _SHAPES.get(chosen.model)) is None:
        raise ValueError(f"no FLOP count for model {chosen.model!r}; known: {_SHAPES}")
    cfg = TrainConfig.from_preset(chosen, objective, **overrides)
    rows = chosen.corpus_rows if objective == "unsup" else chosen.triplet_rows
    rows = rows or _HUB_ROWS[objective]
    steps = cfg.total_steps(rows)
    views = 3 if objective == "sup" else (1 if cfg.fixed_mask else 2)
    flops = steps * step_flops(shape, views * cfg.batch_size, TOKENS_PER_ROW[objective])
    if cfg.grad_cache_chunk:
        flops *= 4 / 3  # a forward without a graph
    if cfg.eval_steps:
        evals = -(-steps // cfg.eval_steps)  # every eval_steps, and at the end
        sentences = 2 * (cfg.dev_rows or 1_500)
        flops += evals * step_flops(shape, sentences, TOKENS_PER_ROW["dev"]) / 3
    return flops / (tflops * 1e12) / 60
