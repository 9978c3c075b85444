"""The gpu preset's training runs on a T4, estimated from FLOPs; and the padding
that :data:`minicse.config.TOKENS_PER_ROW` assumes, measured on the data folder.

The method is :func:`minicse.config.estimate_minutes`; this script prints its
numbers for each chapter's training runs (as the chapters set them up today) and
re-measures the padded positions per row with bert-base-uncased's WordPiece (the
offline MiniLM's tokenizer) through minicse's own batching.

Usage::

    MINICSE_DATA=../shared/data python benchmarks/gpu_estimate.py
"""

from __future__ import annotations

import random
from statistics import mean

from minicse.config import TOKENS_PER_ROW, estimate_minutes

# (chapter, run, objective, runs, overrides): the gpu preset's trainings
RUNS = [
    ("5", "12 settings x 150 steps", "unsup", 12, dict(max_steps=150, eval_steps=None)),
    ("6", "unsup SimCSE", "unsup", 1, {}),
    ("6", "  full epoch (max_steps=None)", "unsup", 1, dict(max_steps=None)),
    ("7", "sup SimCSE", "sup", 1, {}),
    ("7", "  full 3 epochs (max_steps=None)", "sup", 1, dict(max_steps=None)),
    (
        "7",
        "hard-negative sweep, 4 x 40",
        "sup",
        4,
        dict(max_steps=40, eval_steps=None),
    ),
    ("8", "seed runs, 3 x 500", "unsup", 3, dict(max_steps=500, eval_steps=50)),
    (
        "9",
        "seed + control runs, 5 x 500",
        "unsup",
        5,
        dict(max_steps=500, eval_steps=50),
    ),
]


def padded_per_row(tokenizer, rows, batch_size, chunk=None, batches=20, seed=0):
    """Mean padded positions per row of ``batches`` random training batches."""
    from minicse.batching import make_batch

    rng, values = random.Random(seed), []
    for _ in range(batches):
        batch = make_batch(tokenizer, rng.sample(rows, batch_size), 32, chunk=chunk)
        pieces = [p["input_ids"] for p in batch.pieces]
        values.append(sum(p.numel() for p in pieces) / sum(len(p) for p in pieces))
    return mean(values)


def measure(batches: int = 20) -> dict[str, float]:
    """Padded positions per row: wiki1m at batch 64, SNLI dev/test at batch 512 in
    GradCache chunks of 128, STS-B dev in ``encode``'s sorted batches of 128."""
    from transformers import AutoTokenizer

    from minicse import load_corpus, load_nli_triplets, load_sts
    from minicse.encoder import offline_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(offline_model_path()))
    corpus = [(text,) for text in load_corpus("wiki1m")]
    triplets = list(load_nli_triplets().itertuples(index=False, name=None))
    dev = load_sts("stsb", "dev")
    sentences = dev["sentence1"].tolist() + dev["sentence2"].tolist()
    lengths = sorted(len(ids) for ids in tokenizer(sentences)["input_ids"])
    blocks = [lengths[i : i + 128] for i in range(0, len(lengths), 128)]
    return {
        "unsup": padded_per_row(tokenizer, corpus, 64, batches=batches),
        "sup (SNLI dev/test)": padded_per_row(tokenizer, triplets, 512, 128, batches),
        "dev": sum(max(b) * len(b) for b in blocks) / len(lengths),
    }


def main() -> None:
    print("padded positions per row: measured here / assumed in TOKENS_PER_ROW")
    for name, value in measure().items():
        print(f"  {name:<20} {value:5.1f} / {TOKENS_PER_ROW[name.split()[0]]:.1f}")
    print("\nchapter  run                                  T4 minutes (estimated)")
    for chapter, what, objective, runs, overrides in RUNS:
        minutes = runs * estimate_minutes("gpu", objective, **overrides)
        print(f"{chapter:>7}  {what:<36} {minutes:6.1f}")


if __name__ == "__main__":
    main()
