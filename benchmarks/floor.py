"""How fast the linear layers alone let all-MiniLM-L6-v2 go on this CPU.

Issue 12's targets ask for times that are ratios of work to speed. This script
measures both sides, so that a target can be checked against what the machine
can do at all:

* the work: the token positions ``evaluate_sts`` encodes (the seven tasks' distinct
  test sentences, sorted by length and padded per batch of 64, as ``encode`` does)
  and those of an unsupervised training step (``[x; x]`` of 64 wiki1m sentences at
  ``max_length`` 32), times the FLOPs of MiniLM's linear layers per position;
* the speed: ``torch.addmm``/``torch.mm`` on MiniLM's own shapes (forward ``x W^T``,
  backward ``dY W`` and ``dY^T X``) at the row counts those workloads use, in fp32.

Dividing the two gives a floor: the time the matrix products alone take, with
attention, layer norms, GELU, dropout, the embedding table and the optimizer free.
A run of the same model through these fp32 products cannot be faster than it.

Usage::

    MINICSE_DATA=../shared/data HF_HUB_OFFLINE=1 python benchmarks/floor.py
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encode import padded_tokens  # noqa: E402
from machine import describe  # noqa: E402

from minicse import STS_TASKS, SentenceEncoder, load_corpus, load_sts  # noqa: E402


@functools.lru_cache
def gemm_rate(m: int, n: int, k: int, kind: str, seconds: float = 0.5) -> float:
    """GFLOP/s of one fp32 product with output ``(m, n)`` and inner size ``k``."""
    if kind == "forward":  # x (m, k) @ W^T (k, n) + b
        a, w, b = torch.randn(m, k), torch.randn(n, k), torch.randn(n)
        run = lambda: torch.addmm(b, a, w.t())  # noqa: E731
    else:  # dY (m, k) @ W (k, n), or dY^T (m, k) @ X (k, n) with k = rows
        a, w = torch.randn(m, k), torch.randn(k, n)
        run = lambda: torch.mm(a, w)  # noqa: E731
    for _ in range(3):
        run()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run()
        calls += 1
    return 2 * m * n * k * calls / (time.perf_counter() - start) / 1e9


def linear_shapes(config) -> list[tuple[int, int]]:
    """(in, out) of every linear layer of one transformer layer."""
    h, i = config.hidden_size, config.intermediate_size
    return [(h, h)] * 4 + [(h, i), (i, h)]  # q, k, v, attention output, FFN in, out


def floor_seconds(positions: int, rows: int, shapes, layers: int, training: bool):
    """Seconds the linear layers need for ``positions`` at ``rows`` per product."""
    total, flops = 0.0, 0
    for k_in, n_out in shapes:
        products = [("forward", rows, n_out, k_in)]
        if training:  # dX = dY W (rows, in), dW = dY^T X (out, in) over the rows
            products += [("dx", rows, k_in, n_out), ("dw", n_out, k_in, rows)]
        for kind, m, n, k in products:
            work = 2 * positions * k_in * n_out * layers  # the same for each product
            total += work / (gemm_rate(m, n, k, kind) * 1e9)
            flops += work
    return total, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--groups", type=int, default=8, help="training forwards/step")
    args = parser.parse_args()

    encoder = SentenceEncoder.from_pretrained("offline-minilm", pooling="mean")
    config, tokenizer = encoder.model.config, encoder.tokenizer
    shapes, layers = linear_shapes(config), config.num_hidden_layers
    print(describe("cpu"))

    texts = set()
    for task in STS_TASKS:
        frame = load_sts(task, "test")
        texts.update(frame.sentence1, frame.sentence2)
    lengths = [len(ids) for ids in tokenizer(sorted(texts))["input_ids"]]
    by_length = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # as encode
    positions = padded_tokens(lengths, by_length, args.batch_size)
    rows = positions // -(-len(lengths) // args.batch_size)  # mean rows per product
    evaluation, eval_flops = floor_seconds(positions, rows, shapes, layers, False)

    corpus = load_corpus("wiki1m", max_rows=64 * args.batch_size)
    ids = tokenizer(corpus, truncation=True, max_length=args.max_length)["input_ids"]
    per_sentence = 2 * sum(len(i) for i in ids) / len(ids)  # two views, no padding
    step_positions = round(per_sentence * args.batch_size)
    step_rows = step_positions // args.groups
    step, step_flops = floor_seconds(step_positions, step_rows, shapes, layers, True)

    peak = gemm_rate(2048, 2048, 2048, "forward")
    print(
        f"\nfp32 matrix products of all-MiniLM-L6-v2 ({layers} layers, hidden "
        f"{config.hidden_size}); 2048^3 product: {peak:.0f} GFLOP/s\n"
    )
    print(
        "| workload | positions | linear TFLOP | floor (products alone) | "
        "at the 2048^3 rate |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| evaluate_sts, 7 tasks ({len(lengths):,} distinct sentences, batch "
        f"{args.batch_size}) | {positions:,} | {eval_flops / 1e12:.2f} | "
        f"{evaluation:.1f} s | {eval_flops / peak / 1e9:.1f} s |"
    )
    rate = args.batch_size / step
    print(
        f"| one unsup step (batch {args.batch_size}, [x; x], {args.groups} "
        f"groups) | {step_positions:,} | {step_flops / 1e12:.3f} | "
        f"{step:.2f} s = {rate:.1f} sentences/s | "
        f"{args.batch_size / (step_flops / peak / 1e9):.1f} sentences/s |"
    )


if __name__ == "__main__":
    main()
