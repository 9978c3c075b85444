"""The losses of three 12-step runs, to check that a refactor moved nothing.

fp32, seed 0, batch 32, the offline MiniLM: unsupervised SimCSE, the same with GradCache
(chunks of 8) and supervised SimCSE on NLI triplets, each loss logged every step. Run it
on two versions of the code and compare the two files; they should be equal to the bit.

Usage::

    MINICSE_DATA=../shared/data HF_HUB_OFFLINE=1 python benchmarks/same_losses.py a.json
    PYTHONPATH=/path/to/other/checkout ... python benchmarks/same_losses.py b.json
    python benchmarks/same_losses.py --compare a.json b.json
"""

from __future__ import annotations

import argparse
import json


def losses() -> dict[str, list[float]]:
    from minicse import load_corpus, load_nli_triplets, train_sup, train_unsup

    sentences = load_corpus("wiki1m", max_rows=2000)
    triplets = load_nli_triplets(max_rows=1000)
    common = dict(max_steps=12, log_every=1, eval_steps=None, precision="fp32",
                  progress=False, seed=0, batch_size=32)  # fmt: skip
    runs = {
        "unsup": (train_unsup, sentences, {}),
        "unsup, GradCache": (train_unsup, sentences, {"grad_cache_chunk": 8}),
        "sup": (train_sup, triplets, {}),
    }
    return {
        name: [r["loss"] for r in fn("offline-minilm", data, **common, **extra).history]
        for name, (fn, data, extra) in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="output file, or two with --compare")
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    if not args.compare:
        json.dump(losses(), open(args.files[0], "w"), indent=1)
        return
    a, b = (json.load(open(f)) for f in args.files)
    for name in a:
        worst = max(abs(x - y) for x, y in zip(a[name], b[name], strict=True))
        print(f"{name:18} equal: {a[name] == b[name]}  largest difference {worst:.3g}")


if __name__ == "__main__":
    main()
