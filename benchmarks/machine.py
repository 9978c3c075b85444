"""The machine line every benchmark table prints.

It names the CPU, the flags that decide its speed and minicse's precision (AVX2,
AVX-512, AVX512-BF16, AMX), the threads torch uses and what ``precision="auto"``
resolves to, so that a table says which of the machine kinds produced it.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from minicse.utils import amp_dtype

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
# what caps torch's, oneDNN's and MKL's instruction sets below the CPU's own: with all
# three at AVX2 an AVX-512 machine runs the kernels (and the precision) of the AVX2 kind
ISA_CAPS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def cpu_model_and_flags(cpuinfo: str | None = None) -> tuple[str, set[str]]:
    """The CPU's model name and flags, from ``/proc/cpuinfo`` where there is one."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
        except OSError:
            cpuinfo = ""
    model, flags = "", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model or platform.processor() or platform.machine(), flags


def auto_precision(device: str | torch.device) -> str:
    """What minicse's ``precision="auto"`` resolves to on ``device``, by name."""
    auto = amp_dtype(device, "auto")
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[auto]


def kernels() -> str:
    """torch's CPU kernel level, and the instruction-set caps set in the environment."""
    caps = ", ".join(
        f"{cap}={os.environ[cap]}" for cap in ISA_CAPS if cap in os.environ
    )
    level = torch.backends.cpu.get_cpu_capability()
    return f"torch kernels {level}" + (f" (capped: {caps})" if caps else "")


def describe(device: str = "cpu", cpuinfo: str | None = None) -> str:
    """One line: CPU model, speed flags, kernels, threads and minicse's precision."""
    model, flags = cpu_model_and_flags(cpuinfo)
    shown = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in FLAGS)
    return (
        f"{model} ({shown}); {kernels()}; torch {torch.get_num_threads()} threads of "
        f"{os.cpu_count()} CPUs; minicse precision='auto' -> "
        f"{auto_precision(device)} on {device}"
    )
