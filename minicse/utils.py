"""Shared helpers: seeding, device and precision, and the checks at the door.

Each ``check_*`` takes a value and the argument's name, and raises one
``ValueError``/``TypeError`` that names the argument, what was given and what was
expected. Public functions call them once per argument; internal code trusts them.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU). See chapter 1.

    Example:
        >>> set_seed(0); a = torch.rand(2)
        >>> set_seed(0); torch.equal(a, torch.rand(2))
        True
    """
    check_int(seed, "seed", minimum=0)
    seed = int(seed)  # random.seed rejects NumPy integers
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """Resolve ``"auto"``/``None`` to cuda, then mps, then cpu. See chapter 1."""
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        fallback = "mps" if torch.backends.mps.is_available() else "cpu"
        return torch.device("cuda" if torch.cuda.is_available() else fallback)
    if not isinstance(device, str):
        raise TypeError(
            f"device must be 'auto', a string or a torch.device, got {device!r}"
        )
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(
            f"device={device!r} is not a device torch knows; use 'auto', 'cpu', "
            "'cuda', 'cuda:1' or 'mps'"
        ) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available")
    return resolved


def _cpu_has_fast_bf16() -> bool:
    """Native oneDNN bf16 on this CPU; ``MINICSE_CPU_BF16=1``/``0`` overrides."""
    override = env_flag("MINICSE_CPU_BF16")
    if override is not None:
        if override not in ("0", "1"):
            raise ValueError(
                f"MINICSE_CPU_BF16 must be '1' (treat the CPU as bf16-fast), '0' "
                f"(treat it as not) or unset (detect), got {override!r}"
            )
        return override == "1"
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(
    device: torch.device | str, precision: str = "auto"
) -> torch.dtype | None:
    """The autocast dtype for ``device``, or ``None`` for plain fp32. See chapter 6.

    ``precision`` is one of :data:`PRECISIONS`. ``"auto"`` picks bf16 where it is
    native (CUDA capability >= 8, CPUs with AVX512-BF16/AMX), fp16 on older GPUs
    (a T4 only emulates bf16), else fp32.

    Example:
        >>> amp_dtype("cpu", "bf16")
        torch.bfloat16
    """
    check_choice(precision, "precision", PRECISIONS)
    device = torch.device(device)
    if precision != "auto":
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if device.type == "cuda":  # native bf16 from Ampere (8.0) on
        major, _ = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    if device.type == "cpu" and _cpu_has_fast_bf16():
        return torch.bfloat16
    return None


def autocast(device: torch.device | str, precision: str = "auto"):
    """A ``torch.autocast`` context for ``device`` and ``precision``, or a no-op."""
    device = torch.device(device)
    dtype = amp_dtype(device, precision)
    if dtype is None or device.type not in ("cuda", "cpu", "mps"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _got(value: Any, typed: bool = True) -> str:
    """``value``'s type and repr (cut to 60 characters), for an error message."""
    text = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"{type(value).__name__} {text}" if typed else text


def check_texts(
    texts: Any, name: str = "texts", allow_empty: bool = False
) -> list[str]:
    """``texts`` (any iterable but a bare string) as a list of non-blank strings."""
    if isinstance(texts, str):
        text = _got(texts, typed=False)
        raise TypeError(
            f"{name} must be a list of strings, got a single string {text}; "
            f"wrap it in a list: [{text}]"
        )
    if not isinstance(texts, Iterable):  # None too
        raise TypeError(f"{name} must be a list of strings, got {_got(texts)}")
    texts = list(texts)
    if not texts and not allow_empty:
        raise ValueError(f"{name} is empty; pass at least one sentence")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] must be a string, got {_got(text)}")
        if not text.strip():
            raise ValueError(
                f"{name}[{i}] is empty or whitespace only ({text!r}); remove empty "
                "sentences before encoding or training"
            )
    return texts


def check_same_length(a: Sequence, b: Sequence, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` unless ``len(a) == len(b)``."""
    if len(a) != len(b):
        raise ValueError(
            f"{name_a} and {name_b} must have the same length, "
            f"got {len(a)} and {len(b)}"
        )


def check_finite(values: Any, name: str) -> None:
    """Raise ``ValueError`` if ``values`` (tensor, array or list) holds NaN or inf."""
    if isinstance(values, Tensor):
        ok = bool(torch.isfinite(values).all())  # True when empty
    else:
        ok = bool(np.isfinite(np.asarray(values, dtype=float)).all())
    if not ok:
        raise ValueError(
            f"{name} contains NaN or inf values; check the inputs that produced it"
        )


def check_int(
    value: Any, name: str, minimum: int = 1, optional: bool = False, auto: bool = False
) -> None:
    """Raise unless ``value`` is an int >= ``minimum`` (a NumPy int, not a bool).

    ``optional`` also allows ``None``; ``auto`` the string ``"auto"``.

    Example:
        >>> check_int(0, "batch_size")
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be an int >= 1, got int 0
    """
    is_auto = auto and isinstance(value, str) and value == "auto"
    if is_auto or (optional and value is None):
        return
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not is_int or value < minimum:
        also = (" or None" if optional else "") + (" or 'auto'" if auto else "")
        error = ValueError if is_int else TypeError
        raise error(f"{name} must be an int >= {minimum}{also}, got {_got(value)}")


def check_number(value: Any, name: str, bound: str | None = None) -> None:
    """Raise unless ``value`` is a finite number, within ``bound`` if given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {_got(value)}")
    low_ok = bound is None or value > 0 or (bound == ">= 0" and value == 0)
    if not (math.isfinite(value) and low_ok):
        want = f"a finite number {bound}" if bound else "finite"
        raise ValueError(f"{name} must be {want}, got {value!r}")


def check_positive(value: Any, name: str) -> None:
    """Raise unless ``value`` is a finite number > 0."""
    check_number(value, name, "> 0")


def check_non_negative(value: Any, name: str) -> None:
    """Raise unless ``value`` is a finite number >= 0."""
    check_number(value, name, ">= 0")


def check_choice(value: Any, name: str, choices: Iterable[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name} {value!r}; choose one of {options}")


def check_embeddings(same: str = "shape", **tensors: Tensor | None) -> None:
    """Raise unless each tensor (``None`` skipped) is a finite ``(rows, dim)`` float.

    All share the first one's dtype and its ``same``: ``"shape"`` or ``"dim"``.
    NaN/inf are looked for on the CPU only: on an accelerator the check would be
    a host sync in every loss call (the training loop checks the loss instead).

    Example:
        >>> check_embeddings(anchors=torch.zeros(2, 3), positives=torch.zeros(1, 3))
        Traceback (most recent call last):
        ...
        ValueError: anchors (2, 3) and positives (1, 3) must have the same shape
    """
    (first, ref), *_ = tensors.items()
    cut, want = (0, "shape") if same == "shape" else (1, "embedding dim")
    for name, x in tensors.items():
        if x is None:
            continue
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        shape = tuple(x.shape)
        if x.dim() != 2:
            raise ValueError(f"{name} must have shape (batch, dim), got {shape}")
        if shape[0] == 0:
            raise ValueError(f"{name} is empty (shape {shape}); pass at least one row")
        if shape[1] == 0:
            raise ValueError(f"{name} has no features (shape {shape})")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
        if x.shape[cut:] != ref.shape[cut:]:
            got = f"{first} {tuple(ref.shape)} and {name} {shape}"
            raise ValueError(f"{got} must have the same {want}")
        if x.dtype != ref.dtype:
            raise TypeError(f"{first} is {ref.dtype} but {name} is {x.dtype}; use one")
        if x.device.type == "cpu":
            check_finite(x.detach(), name)


@contextlib.contextmanager
def cpu_threads(count: int = 1):
    """Run a block with ``count`` CPU threads, then restore the previous number.

    Small networks (a 2-D toy, a linear head on cached vectors) run fastest on one
    thread: their matrix products are too small to split.
    """
    check_int(count, "count", minimum=1)
    before = torch.get_num_threads()
    torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def progress_bar_class() -> type:
    """``tqdm.auto.tqdm``, without its warning where Jupyter lacks ipywidgets.

    There it falls back to the text bar, which is what the book wants: a widget
    would load its script from a CDN, and the built pages must read offline.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from tqdm.auto import tqdm
    return tqdm


def env_flag(name: str) -> str | None:
    """The value of environment variable ``name``, or ``None`` when unset or blank."""
    return os.environ.get(name, "").strip() or None


def glue(name: str, value: Any) -> None:
    """Put a run's ``value`` into the book's text as ``{glue:text}`name```.

    Uses myst-nb's ``glue`` where the book is built, and does nothing elsewhere
    (Colab, a bare kernel). NumPy and torch scalars become Python numbers, so
    format specs such as ``:.1f`` work.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    if hasattr(value, "item"):
        value = value.item()
    myst_glue(name, value, display=False)
