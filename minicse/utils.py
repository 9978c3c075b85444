"""Small shared helpers: seeding, device and precision choice, input checks.

Every public function of minicse validates its inputs with the checks below, so
that a user mistake becomes one clear ``ValueError``/``TypeError`` that names the
argument, what was given and what was expected -- never a traceback from deep
inside torch.
"""

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

__all__ = [
    "set_seed",
    "pick_device",
    "autocast",
    "amp_dtype",
    "check_texts",
    "check_finite",
    "check_int",
    "check_positive",
    "check_non_negative",
    "check_choice",
    "check_same_length",
    "check_embeddings",
]


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU) for reproducible runs.

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
    """Resolve ``"auto"`` to ``cuda``, then ``mps``, then ``cpu``; pass others through.

    Example:
        >>> pick_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
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
        raise ValueError(
            f"device={device!r} was asked for, but CUDA is not available here"
        )
    return resolved


def _cpu_has_fast_bf16() -> bool:
    """True when oneDNN has native bf16 kernels (AVX512-BF16 or AMX) on this CPU.

    ``MINICSE_CPU_BF16`` overrides the detection: ``1`` treats this CPU as
    bf16-fast (so ``precision="auto"`` picks bf16), ``0`` as not (auto picks
    fp32); unset or empty asks oneDNN. Being an environment variable, it also
    reaches subprocesses (the CLI, ``torchrun``), so one test run can exercise
    what a bf16 CPU does on any machine: ``MINICSE_CPU_BF16=1 python -m pytest``.
    """
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
    """The autocast dtype to use on ``device``, or ``None`` for plain fp32.

    ``precision`` is ``"auto"`` (bf16 where the hardware runs it natively: CUDA
    compute capability >= 8.0, CPUs with AVX512-BF16/AMX; fp16 with a gradient
    scaler on older GPUs such as Colab's T4, where ``torch.cuda.is_bf16_supported``
    says True through emulation; else fp32),
    ``"bf16"``, ``"fp16"`` or ``"fp32"``.
    ``MINICSE_CPU_BF16=1``/``0`` forces the CPU check (see ``_cpu_has_fast_bf16``).
    """
    check_choice(precision, "precision", ("auto", "bf16", "fp16", "fp32"))
    device = torch.device(device)
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":  # native bf16 from Ampere (8.0) on; before it,
        major, _ = torch.cuda.get_device_capability(device)  # e.g. a T4 (7.5),
        return torch.bfloat16 if major >= 8 else torch.float16  # only emulated
    if device.type == "cpu" and _cpu_has_fast_bf16():
        return torch.bfloat16
    return None


def autocast(device: torch.device | str, precision: str = "auto"):
    """A ``torch.autocast`` context for ``device`` and ``precision`` (or a no-op)."""
    device = torch.device(device)
    dtype = amp_dtype(device, precision)
    if dtype is None or device.type not in ("cuda", "cpu", "mps"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


# ----------------------------------------------------------------------------------
# Input checks shared by every module.
# ----------------------------------------------------------------------------------


def _preview(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_texts(
    texts: Any, name: str = "texts", allow_empty: bool = False
) -> list[str]:
    """Return ``texts`` as a list of strings, or raise a clear error.

    Rejects a bare string (a common slip: ``encode("a sentence")``), ``None``,
    an empty list, non-string items and whitespace-only sentences.

    Example:
        >>> check_texts(("a cat", "a dog"))
        ['a cat', 'a dog']
    """
    if texts is None:
        raise TypeError(f"{name} must be a list of strings, got None")
    if isinstance(texts, str):
        raise TypeError(
            f"{name} must be a list of strings, got a single string "
            f"{_preview(texts)}; wrap it in a list: [{_preview(texts)}]"
        )
    if not isinstance(texts, Iterable):
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}")
    texts = list(texts)
    if not texts and not allow_empty:
        raise ValueError(f"{name} is empty; pass at least one sentence")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"{name}[{i}] must be a string, "
                f"got {type(text).__name__} {_preview(text)}"
            )
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
        ok = bool(torch.isfinite(values).all()) if values.numel() else True
    else:
        array = np.asarray(values, dtype=float)
        ok = bool(np.isfinite(array).all())
    if not ok:
        raise ValueError(
            f"{name} contains NaN or inf values; check the inputs that produced it"
        )


def check_int(
    value: Any, name: str, minimum: int = 1, optional: bool = False, auto: bool = False
) -> None:
    """Raise unless ``value`` is an int >= ``minimum`` (or ``None`` if ``optional``,
    or ``"auto"`` if ``auto``).

    Python ints and NumPy integers pass; bools, floats and strings do not.

    Args:
        value: the value to check.
        name: the argument's name, for the message.
        minimum: the smallest value allowed.
        optional: also allow ``None``.
        auto: also allow the string ``"auto"``.

    Raises:
        TypeError: ``value`` is not an int (a bool counts as not an int).
        ValueError: ``value`` is below ``minimum``.

    Example:
        >>> check_int(8, "batch_size")
        >>> check_int(None, "max_rows", optional=True)
        >>> check_int(0, "batch_size")
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be an int >= 1, got int 0
    """
    is_auto = auto and isinstance(value, str) and value == "auto"
    if (optional and value is None) or is_auto:
        return
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not is_int or value < minimum:
        also = (" or None" if optional else "") + (" or 'auto'" if auto else "")
        expected = f"an int >= {minimum}{also}"
        error = ValueError if is_int else TypeError
        raise error(f"{name} must be {expected}, got {type(value).__name__} {value!r}")


def check_positive(value: Any, name: str) -> None:
    """Raise unless ``value`` is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number, got {type(value).__name__} {value!r}"
        )
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_non_negative(value: Any, name: str) -> None:
    """Raise unless ``value`` is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number, got {type(value).__name__} {value!r}"
        )
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_choice(value: Any, name: str, choices: Iterable[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name} {value!r}; choose one of {options}")


def check_embeddings(x: Any, name: str, dim: int = 2) -> Tensor:
    """Check ``x`` is a floating tensor with ``dim`` dims and at least one row.

    Its values are checked for NaN/inf only on the CPU, where that costs a small
    reduction. On an accelerator the check would be a host sync in every loss
    call of a training step; there a NaN shows in the loss, which the training
    loop checks once per ``log_every`` steps.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != dim:
        want = "(batch, dim)" if dim == 2 else f"{dim} dims"
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(
            f"{name} is empty (shape {tuple(x.shape)}); pass at least one row"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.device.type == "cpu":
        check_finite(x.detach(), name)
    return x


def env_flag(name: str) -> str | None:
    """The value of environment variable ``name``, or ``None`` when unset/empty."""
    value = os.environ.get(name, "").strip()
    return value or None
