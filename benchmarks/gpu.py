"""GPU training speed: unsup SimCSE steps on a bert-base-sized model, with MFU.

The model is a random-init ``BertModel(BertConfig())`` (bert-base: 12 layers,
hidden 768, 12 heads, 110M parameters; nothing is downloaded) with the offline
MiniLM's tokenizer (the same bert-base-uncased WordPiece vocab). Training goes
through minicse's own path, ``train_unsup``: one forward over ``[x; x]``, the
SimCSE MLP head, ``info_nce_loss``, fused AdamW, bf16 autocast, dynamic padding,
background tokenizing. Batch 64, max length 32, sentences from
``$MINICSE_DATA/corpus/wiki1m_head.txt`` (or synthetic ones when unset).

Model FLOPs per step (Kaplan et al. 2020, arXiv:2001.08361 section 2.1, and the
PaLM paper's MFU, Chowdhery et al. 2022, arXiv:2204.02311 appendix B), training
= 3x forward::

    flops = 6 * N * tokens + 12 * n_layers * H * sum_rows(L_row ** 2)

with ``N`` the non-embedding parameters (transformer layers and MLP head; the
embeddings are lookups and the unused BERT pooler has no backward), ``tokens``
the token positions processed and ``L_row`` the sequence length of each row
(QK^T and AV: ``4 * L^2 * H`` per layer forward). ``MFU = flops / step time /
peak``, with the dense bf16 tensor-core peak of the GPU (table below, or
``--peak-tflops``). Two figures are printed: on padded positions (what the GPU
computes) and on real tokens only (useful work).

Usage::

    python benchmarks/gpu.py                                  # CUDA, bert-base, bf16
    python benchmarks/gpu.py --compile                        # + torch.compile
    python benchmarks/gpu.py --cpu-check                      # tiny CPU sanity run
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from NVIDIA data sheets;
# the first key found in torch.cuda.get_device_name() wins (most specific first).
PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100": 989.0,  # SXM
    "H200": 989.0,
    "GH200": 989.0,
    "B200": 2250.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
}


def peak_tflops(device_name: str, override: float | None) -> float | None:
    """Peak dense bf16 TFLOP/s for ``device_name`` (``None`` when unknown)."""
    if override:
        return override
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in device_name:
            return value
    return None


def sentences(n: int) -> list[str]:
    """``n`` wiki1m sentences, or synthetic ones of similar length without data."""
    folder = os.environ.get("MINICSE_DATA")
    if folder and os.path.isdir(folder):
        from minicse.data import load_corpus

        rows = load_corpus("wiki1m", max_rows=n)
        return (rows * (n // len(rows) + 1))[:n]
    rng = random.Random(0)
    words = "the of and in a to was is for on as by with he at from his an were".split()
    words += "city river music season school family science language film war".split()
    return [" ".join(rng.choices(words, k=rng.randint(6, 30))) for _ in range(n)]


def build_encoder(args: argparse.Namespace):
    """Random-init BERT (bert-base by default) + CLS pooling + SimCSE MLP head."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from minicse.encoder import SentenceEncoder, offline_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(offline_model_path()))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=4 * args.hidden_size,
    )
    model = BertModel(config)
    if args.compile:
        model.compile(dynamic=True)  # dynamic padding: one graph for all lengths
    return SentenceEncoder(
        model, tokenizer, "cls", mlp="train", max_length=args.max_length
    )


def non_embedding_params(encoder) -> int:
    """Parameters that do matmuls every token: layers + MLP head (N in the formula)."""
    skip = ("embeddings.", "pooler.")
    return sum(
        p.numel()
        for name, p in encoder.named_parameters()
        if not any(part in name for part in skip)
    )


class StepMeter:
    """Forward pre-hook on the encoder: step start times and token counts.

    Counts stay on the device until :meth:`summary` (no host sync per step).
    """

    def __init__(self, encoder, warmup: int) -> None:
        import torch

        self.torch, self.warmup = torch, warmup
        self.stamps: list[float] = []
        self.stats: list[tuple] = []
        encoder.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs) -> None:
        if not module.training:
            return
        if len(self.stamps) == self.warmup and self.torch.cuda.is_available():
            self.torch.cuda.synchronize()  # the timed window starts on an idle GPU
        self.stamps.append(time.perf_counter())
        mask = kwargs["attention_mask"]  # (2B, T)
        lengths = mask.sum(1)
        self.stats.append((mask.shape, lengths.sum(), (lengths.double() ** 2).sum()))

    def summary(self, end: float) -> dict[str, float]:
        """Timed window (after warm-up): steps, seconds, padded/real tokens."""
        timed = self.stats[self.warmup :]
        return {
            "steps": len(timed),
            "seconds": end - self.stamps[self.warmup],
            "padded_tokens": sum(s[0][0] * s[0][1] for s in timed),
            "padded_sq": sum(s[0][0] * s[0][1] ** 2 for s in timed),
            "real_tokens": sum(int(s[1]) for s in timed),
            "real_sq": sum(float(s[2]) for s in timed),
        }


def report(args, encoder, window: dict[str, float], device_name: str) -> str:
    """The results as a markdown table (formula in the module docstring)."""
    n, layers, hidden = non_embedding_params(encoder), args.layers, args.hidden_size
    step_s = window["seconds"] / window["steps"]
    peak = peak_tflops(device_name, args.peak_tflops)
    rows = [("step time (ms)", f"{1000 * step_s:.1f}")]
    for kind in ("padded", "real"):
        tokens, squares = window[f"{kind}_tokens"], window[f"{kind}_sq"]
        flops = 6 * n * tokens + 12 * layers * hidden * squares
        tflops = flops / window["seconds"] / 1e12
        mfu = f"{100 * tflops / peak:.1f}%" if peak else "n/a (unknown peak)"
        rows += [
            (f"{kind} tokens/s", f"{tokens / window['seconds']:,.0f}"),
            (f"model TFLOP/s ({kind} tokens)", f"{tflops:.1f}"),
            (f"MFU ({kind} tokens)", mfu),
        ]
    rows.append(("sentences/s", f"{args.batch_size / step_s:,.0f}"))
    head = (
        f"{device_name}, peak {peak or '?'} TFLOP/s bf16; model {layers}L/{hidden}H, "
        f"N = {n / 1e6:.1f}M non-embedding params; batch {args.batch_size}, "
        f"max_length {args.max_length}, {args.precision}, {window['steps']} timed steps"
        f"{', torch.compile' if args.compile else ''}\n\n| metric | value |\n|---|---|"
    )
    return head + "\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument(
        "--warmup", type=int, help="untimed first steps (default: min(10, steps // 4))"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=768)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, help="default: hidden_size // 64")
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp16", "fp32"))
    parser.add_argument("--compile", action="store_true", help="torch.compile the BERT")
    parser.add_argument("--peak-tflops", type=float, help="override the peak table")
    parser.add_argument(
        "--cpu-check",
        action="store_true",
        help="tiny CPU sanity run: --device cpu --steps 3 --warmup 1 --hidden-size 64 "
        "--layers 2 --heads 2 --precision fp32",
    )
    args = parser.parse_args(argv)
    if args.cpu_check:
        args.device, args.steps, args.warmup, args.precision = "cpu", 3, 1, "fp32"
        args.hidden_size, args.layers, args.heads = 64, 2, 2
    if args.warmup is None:
        args.warmup = max(1, min(10, args.steps // 4))
    args.heads = args.heads or max(1, args.hidden_size // 64)
    if args.steps <= args.warmup:
        parser.error(f"--steps ({args.steps}) must exceed --warmup ({args.warmup})")
    return args


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(
            "benchmarks/gpu.py measures GPU training speed, but no CUDA device is "
            "available here. For a CPU sanity run use --cpu-check (or --device cpu)."
        )
    from minicse.train import train_unsup

    torch.backends.cuda.matmul.allow_tf32 = True  # fp32 leftovers on tensor cores
    encoder = build_encoder(args)
    meter = StepMeter(encoder, args.warmup)
    train_unsup(
        encoder,
        sentences(args.steps * args.batch_size),
        batch_size=args.batch_size,
        max_steps=args.steps,
        max_length=args.max_length,
        precision=args.precision,
        device=args.device,
        eval_steps=None,
        progress=False,
    )
    end = time.perf_counter()  # train_unsup syncs (loss read-out) before returning
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(report(args, encoder, meter.summary(end), name))


if __name__ == "__main__":
    main()
