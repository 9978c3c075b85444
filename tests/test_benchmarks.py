"""Fast checks of the benchmark scripts' arithmetic and options (no training)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_peak_table_picks_the_most_specific_name():
    gpu = load("gpu")
    assert gpu.peak_tflops("NVIDIA H100 80GB HBM3", None) == 989.0
    assert gpu.peak_tflops("NVIDIA H100 PCIe", None) == 756.0
    assert gpu.peak_tflops("NVIDIA H200", None) == 989.0
    assert gpu.peak_tflops("NVIDIA A100-SXM4-40GB", None) == 312.0
    assert gpu.peak_tflops("Some Future GPU", None) is None
    assert gpu.peak_tflops("Some Future GPU", 100.0) == 100.0


def test_gpu_mfu_formula():
    """One step of 2 rows x 4 positions, N = 10, 1 layer, H = 2, 1 s, peak 1e-9 TF."""
    gpu = load("gpu")
    args = gpu.parse_args(["--layers", "1", "--hidden-size", "2", "--steps", "2"])
    args.peak_tflops = 1e-9  # 1,000 FLOP/s
    encoder = SimpleNamespace(named_parameters=lambda: [])
    gpu.non_embedding_params = lambda _: 10
    window = {"steps": 1, "seconds": 1.0, "padded_tokens": 8, "padded_sq": 32}
    window |= {"real_tokens": 8, "real_sq": 32}
    text = gpu.report(args, encoder, window, "GPU")
    flops = 6 * 10 * 8 + 12 * 1 * 2 * 32  # = 1,248
    assert f"MFU (padded tokens) | {100 * flops / 1000:.1f}%" in text


def test_gpu_refuses_cpu_without_the_flag():
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu.py"), "--device", "cuda"],
        capture_output=True,
        text=True,
    )
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available: the script would run")
    assert done.returncode != 0
    assert "--cpu-check" in done.stderr


def test_gpu_args():
    gpu = load("gpu")
    args = gpu.parse_args(["--cpu-check"])
    assert (args.device, args.hidden_size, args.heads, args.precision) == (
        "cpu",
        64,
        2,
        "fp32",
    )
    assert gpu.parse_args(["--steps", "2"]).warmup == 1
    assert gpu.parse_args([]).heads == 12  # bert-base
    with pytest.raises(SystemExit):
        gpu.parse_args(["--steps", "2", "--warmup", "5"])


def test_train_throughput_table_and_ratios():
    bench = load("train_throughput")
    run = {"precision": "fp32", "seconds_total": 10.0}
    runs = {
        "minicse": [
            {**run, "sentences_per_s": s, "peak_rss_mb": 900.0, "positions_per_step": p}
            for s, p in ((60.0, 2800.0), (66.0, 2700.0), (54.0, 2750.0))
        ],
        "sentence-transformers": [
            {
                **run,
                "sentences_per_s": s,
                "peak_rss_mb": 1000.0,
                "positions_per_step": p,
            }
            for s, p in ((50.0, 4096.0), (49.0, 4032.0), (51.0, 4125.0))
        ],
    }
    text = bench.table(runs)  # medians: 60 / 50 sent/s, 2,750 / 4,096 positions
    assert "**1.20x**" in text and "**0.90x**" in text
    assert "| 2,750 |" in text and "| 4,096 |" in text and "1.49x fewer" in text
    with pytest.raises(SystemExit):
        bench.parse_args(["--steps", "3", "--warmup", "3"])


CPUINFO_AVX2 = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma
"""


def test_machine_line_names_the_cpu_its_flags_and_the_precision(monkeypatch):
    machine = load("machine")
    for cap in machine.ISA_CAPS:  # as on a machine run without caps
        monkeypatch.delenv(cap, raising=False)
    model, flags = machine.cpu_model_and_flags(CPUINFO_AVX2)
    assert model == "AMD EPYC 7B13" and {"avx2", "fma"} <= flags
    monkeypatch.setenv("MINICSE_CPU_BF16", "0")
    line = machine.describe("cpu", CPUINFO_AVX2)
    assert line.startswith("AMD EPYC 7B13 (avx2 yes, avx512f no, avx512_bf16 no")
    assert "precision='auto' -> fp32 on cpu" in line
    assert machine.auto_precision("cpu") == "fp32"
    monkeypatch.setenv("MINICSE_CPU_BF16", "1")
    assert "precision='auto' -> bf16 on cpu" in machine.describe("cpu", CPUINFO_AVX2)
    assert machine.auto_precision("cpu") == "bf16"
    assert machine.cpu_model_and_flags("")[0]  # no cpuinfo: still a name
    level = torch.backends.cpu.get_cpu_capability()
    assert f"torch kernels {level};" in line  # no cap set
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert "(capped: ONEDNN_MAX_CPU_ISA=AVX2);" in machine.describe("cpu", CPUINFO_AVX2)


def test_isa_caps_run_an_avx512_machine_as_the_avx2_kind():
    """oneDNN capped at AVX2 reports no fast bf16, so ``auto`` is fp32 as on AVX2."""
    caps = {"ONEDNN_MAX_CPU_ISA": "AVX2", "MINICSE_CPU_BF16": ""}
    code = "from minicse.utils import amp_dtype; print(amp_dtype('cpu'))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **caps},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "None"


def test_floor_counts_padded_positions_and_linear_shapes():
    floor, lengths = load("floor"), [3, 5, 2, 2, 4]
    by_length = sorted(range(5), key=lambda i: -lengths[i])  # as floor.main does
    assert floor.padded_tokens(lengths, by_length, 2) == 2 * 5 + 2 * 3 + 1 * 2
    config = SimpleNamespace(hidden_size=4, intermediate_size=16)
    assert floor.linear_shapes(config) == [(4, 4)] * 4 + [(4, 16), (16, 4)]


def test_encode_int8_copy_quantizes_every_linear_and_leaves_the_model():
    import torch

    encode = load("encode")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 8)
    )
    x = torch.randn(5, 16)
    quantized = encode.int8_copy(model)
    dynamic = torch.ao.nn.quantized.dynamic.Linear
    assert [type(m) for m in quantized if "Linear" in type(m).__name__] == [dynamic] * 2
    assert all(type(m) is torch.nn.Linear for m in (model[0], model[2]))
    with torch.inference_mode():
        exact, approx = model(x), quantized(x)
    assert not torch.equal(exact, approx)  # it really runs in int8
    assert torch.allclose(exact, approx, atol=0.05 * exact.abs().max().item())


def test_targets_verdicts_follow_the_thresholds():
    targets = load("targets")
    rows = {"fp32 (equal precision)": 1.5, "minicse defaults": 2.49}
    lines = targets.verdicts((1.51, 1.01), rows, 45.0, quick=False)
    assert [status for *_, status in lines] == ["not met", "met", "not met", "met"]
    assert lines[0][1] == "1.51x at 1.01x"  # memory above 1.0x fails training
    assert targets.verdicts((1.5, 1.0), rows, 45.1, quick=False)[0][2] == "met"
    assert targets.verdicts((1.5, 1.0), rows, 45.1, quick=False)[3][2] == "not met"
    with_bf16 = targets.verdicts(
        (2.0, 0.5), rows | {"bf16 (equal precision)": 1.2}, 30.0, quick=True
    )
    assert [target for target, *_ in with_bf16][2].endswith("(bf16)")
    assert {status for *_, status in with_bf16} == {"check run only"}
