"""Seeding, device and precision, and the checks at the door (one per argument)."""

from __future__ import annotations

import contextlib
import math
import os
import random
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


class NonFiniteError(ValueError, FloatingPointError):
    """A NaN or inf where finite numbers are needed: inputs, outputs or a loss."""


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU). See chapter 1."""
    check_int(seed, "seed", minimum=0)
    random.seed(int(seed))  # random.seed rejects NumPy integers
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """Resolve ``"auto"``/``None`` to cuda, then mps, then cpu. See chapter 1."""
    if device is None or device == "auto":
        fallback = "mps" if torch.backends.mps.is_available() else "cpu"
        return torch.device("cuda" if torch.cuda.is_available() else fallback)
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        got = f"device={device!r} is not a device torch knows"
        raise ValueError(f"{got}; use 'auto', 'cpu', 'cuda', 'cuda:1', 'mps'") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available")
    return resolved


def amp_dtype(
    device: torch.device | str, precision: str = "auto"
) -> torch.dtype | None:
    """The autocast dtype for ``device`` (``None``: plain fp32); ``"auto"``: bf16 where
    native (CUDA capability >= 8, CPUs with AVX512-BF16/AMX), fp16 on older GPUs (a T4
    only emulates bf16), else fp32. See chapter 6."""
    check_choice(precision, "precision", PRECISIONS)
    device = torch.device(device)
    if precision != "auto":
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if device.type == "cuda":  # native bf16 from Ampere (8.0) on
        major, _ = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    fast = env_flag("MINICSE_CPU_BF16")  # "1"/"0" overrides oneDNN's answer
    if fast is None:
        with contextlib.suppress(AttributeError, RuntimeError):
            fast = str(int(torch.ops.mkldnn._is_mkldnn_bf16_supported()))
    check_choice(fast, "MINICSE_CPU_BF16", ("1", "0", None))  # None: unset
    return torch.bfloat16 if device.type == "cpu" and fast == "1" else None


def autocast(device: torch.device | str, precision: str = "auto"):
    """A ``torch.autocast`` context for ``device`` and ``precision``, or a no-op."""
    device = torch.device(device)
    dtype = amp_dtype(device, precision)
    if dtype is None or device.type not in ("cuda", "cpu", "mps"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _got(value: Any) -> str:
    """``value``'s type and repr (cut to 60 characters), for an error message."""
    return f"{type(value).__name__} {value!r:.60}"


def check_texts(texts: Any, name: str = "texts") -> list[str]:
    """``texts`` (any iterable but a bare string) as a list of non-blank strings."""
    if isinstance(texts, str) or not isinstance(texts, Iterable):  # None too
        fix = "; a single string: wrap it in a list" if isinstance(texts, str) else ""
        raise TypeError(f"{name} must be a list of strings, got {_got(texts)}{fix}")
    texts = list(texts)
    if not texts:
        raise ValueError(f"{name} is empty; pass at least one sentence")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] must be a string, got {_got(text)}")
        if not text.strip():
            raise ValueError(f"{name}[{i}] is empty or whitespace only: remove it")
    return texts


def check_array(values: Any, name: str, ndim: int) -> np.ndarray:
    """A finite, non-empty ``ndim``-D float64 array from a tensor, array or list."""
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of numbers: {err}") from err
    if array.ndim != ndim or array.size == 0:
        got = f"got shape {array.shape}"
        raise ValueError(f"{name} must be a non-empty {ndim}-D array of numbers, {got}")
    if not np.isfinite(array).all():
        raise NonFiniteError(f"{name} contains NaN or inf values; check its inputs")
    return array


def check_int(
    value: Any, name: str, minimum: int = 1, optional: bool = False, auto: bool = False
) -> None:
    """Raise unless ``value`` is an int >= ``minimum`` (or ``None``/``"auto"``)."""
    if (optional and value is None) or (auto and value == "auto"):
        return
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not is_int or value < minimum:
        also = (" or None" if optional else "") + (" or 'auto'" if auto else "")
        error = ValueError if is_int else TypeError
        raise error(f"{name} must be an int >= {minimum}{also}, got {_got(value)}")


_RANGES = {  # a number's bound, as the error message spells it
    None: lambda x: True,
    "> 0": lambda x: x > 0,
    ">= 0": lambda x: x >= 0,
    "in [0, 1)": lambda x: 0 <= x < 1,
    "in [0, 1]": lambda x: 0 <= x <= 1,
}


def check_number(
    value: Any, name: str, bound: str | None = None, optional: bool = False
) -> None:
    """Raise unless ``value`` is a finite number within ``bound`` (or ``None``)."""
    if optional and value is None:
        return
    also = "None or " if optional else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be {also}a number, got {_got(value)}")
    if not (math.isfinite(value) and _RANGES[bound](value)):
        want = f"a finite number {bound}" if bound else "finite"
        raise ValueError(f"{name} must be {also}{want}, got {value!r}")


def check_choice(value: Any, name: str, choices: Sequence) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name} {value!r}; choose one of {options}")


def check_embeddings(same: str = "shape", **tensors: Tensor | None) -> None:
    """Raise unless each tensor (``None`` skipped) is a finite ``(rows, dim)`` float
    with the first one's dtype and ``same`` (``"shape"`` or ``"dim"``)."""
    tensors = {name: x for name, x in tensors.items() if x is not None}
    (first, ref), *_ = tensors.items()
    cut, want = (0, "shape") if same == "shape" else (1, "embedding dim")
    for name, x in tensors.items():
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        shape = tuple(x.shape)
        if len(shape) != 2:
            raise ValueError(f"{name} must have shape (batch, dim), got {shape}")
        if 0 in shape:
            raise ValueError(f"{name} is empty (shape {shape}): nothing to compare")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
        if x.shape[cut:] != ref.shape[cut:]:
            got = f"{first} {tuple(ref.shape)} and {name} {shape}"
            raise ValueError(f"{got} must have the same {want}")
        if x.dtype != ref.dtype:
            raise TypeError(f"{first} is {ref.dtype} but {name} is {x.dtype}; use one")
        if x.device.type == "cpu" and not x.detach().isfinite().all():  # GPU: no sync
            raise NonFiniteError(f"{name} contains NaN or inf values; check its inputs")


@contextlib.contextmanager
def cpu_threads(count: int = 1):
    """Run a block on ``count`` CPU threads (tiny networks run fastest on one)."""
    check_int(count, "count")
    before = torch.get_num_threads()
    torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def env_flag(name: str) -> str | None:
    """The value of environment variable ``name``, or ``None`` when unset or blank."""
    return os.environ.get(name, "").strip() or None


def glue(name: str, value: Any) -> None:
    """myst-nb's ``glue`` of ``value`` (as a Python number); a no-op without it."""
    with contextlib.suppress(ImportError):
        from myst_nb import glue as myst_glue

        myst_glue(name, getattr(value, "item", lambda: value)(), display=False)
