"""Command line: ``python -m minicse train-unsup|train-sup|evaluate|export``.

Thin wrappers over :func:`minicse.train.train_unsup`, :func:`~minicse.train.train_sup`,
:func:`minicse.evaluate.evaluate_sts` and ``SentenceEncoder.save``; argparse
lives here only. Works under ``torchrun --nproc_per_node N -m minicse ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

EPILOG = """\
examples:
  python -m minicse train-unsup --preset smoke --output-dir runs/smoke
  python -m minicse train-unsup offline-minilm --data wiki1m --preset cpu \\
      --output-dir runs/unsup
  python -m minicse train-unsup offline-minilm --output-dir runs/unsup --resume
  python -m minicse train-sup bert-base-uncased --data nli --preset gpu \\
      --output-dir runs/sup
  torchrun --nproc_per_node 2 -m minicse train-unsup tiny --preset smoke \\
      --output-dir runs/ddp
  python -m minicse evaluate runs/unsup --tasks stsb sickr --split test
  python -m minicse export runs/unsup/checkpoint-200 exported/

Data (MINICSE_DATA or the Hugging Face hub): 'wiki1m' and 'nli', or a file.
Docs: the minicse book, chapters 6 (unsupervised) and 7 (supervised).
"""


def _int_or_auto(value: str) -> int | str:
    """``auto`` or a count (TrainConfig checks the range)."""
    return value if value == "auto" else int(value)


# (flag, TrainConfig field, type, help)
_TRAIN_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--batch-size", "batch_size", int, "global batch size (paper: 64 unsup, 512 sup)"),
    ("--learning-rate", "learning_rate", float, "peak AdamW learning rate"),
    ("--epochs", "num_epochs", int, "passes over the data"),
    ("--max-steps", "max_steps", int, "optimizer steps (overrides --epochs)"),
    ("--max-length", "max_length", int, "truncation length in tokens (paper: 32)"),
    ("--temperature", "temperature", float, "InfoNCE temperature (paper: 0.05)"),
    ("--pooling", "pooling", str, "cls (paper), cls_before_pooler, mean, ..."),
    ("--eval-steps", "eval_steps", int, "evaluate on STS-B dev every N steps"),
    ("--dev-rows", "dev_rows", int, "use only the first N STS-B dev pairs"),
    ("--save-steps", "save_steps", int, "checkpoint every N steps"),
    ("--seed", "seed", int, "random seed (data order, dropout)"),
    ("--precision", "precision", str, "auto (bf16 where fast), bf16, fp16, fp32"),
    ("--device", "device", str, "auto, cpu, cuda, cuda:1 or mps"),
    ("--grad-cache-chunk", "grad_cache_chunk", int, "GradCache chunk rows"),
    ("--length-groups", "length_groups", _int_or_auto, "length-sorted forwards (auto)"),
    ("--num-workers", "num_workers", _int_or_auto, "batches tokenized ahead (auto)"),
    ("--log-every", "log_every", int, "steps between loss records"),
    ("--warmup-ratio", "warmup_ratio", float, "linear warm-up share of the steps"),
    ("--max-grad-norm", "max_grad_norm", float, "gradient clipping norm"),
]


_CHOICES = {
    "pooling": ("cls", "cls_before_pooler", "mean", "first_last_mean", "last2_mean"),
    "precision": ("auto", "bf16", "fp16", "fp32"),
}
PRESET_CHOICES = ("smoke", "cpu", "gpu", "auto")


def _add_train_parser(subparsers: Any, objective: str) -> None:
    data = "wiki1m" if objective == "unsup" else "nli"
    what = (
        "Unsupervised SimCSE: dropout views of unlabelled sentences."
        if objective == "unsup"
        else "Supervised SimCSE: NLI (sent0, sent1, hard_neg) triplets."
    )
    parser = subparsers.add_parser(
        f"train-{objective}",
        help=what,
        description=what + " Writes the best model (STS-B dev) to --output-dir.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help="hub name, local folder, 'tiny' or 'offline-minilm' "
        "(default: the preset's model)",
    )
    parser.add_argument(
        "--data",
        default=data,
        metavar="DATA",
        help=f"'{data}' or a file (default: {data})",
    )
    parser.add_argument(
        "--max-rows", type=int, metavar="N", help="use only the first N rows"
    )
    parser.add_argument(
        "--preset",
        choices=PRESET_CHOICES,
        help="run sizes: smoke (CI), cpu (laptop), gpu (the paper); default: paper",
    )
    parser.add_argument(
        "--output-dir", metavar="DIR", help="folder for the best model + checkpoints"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from --output-dir"
    )
    parser.add_argument(
        "--no-eval", action="store_true", help="no STS-B dev evaluation"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    if objective == "sup":
        parser.add_argument(
            "--hard-negative-weight", type=float, help="log(alpha) (paper: 0)"
        )
    for flag, dest, kind, text in _TRAIN_OPTIONS:
        extra = {"choices": _CHOICES[dest]} if dest in _CHOICES else {}
        metavar = {int: "N", float: "X"}.get(kind, dest.upper())
        parser.add_argument(
            flag, dest=dest, type=kind, help=text, metavar=metavar, **extra
        )
    parser.set_defaults(handler=_train_command, objective=objective)


def build_parser() -> argparse.ArgumentParser:
    """The ``minicse`` argument parser (sub-commands and their options).

    Example:
        >>> args = build_parser().parse_args(["train-sup", "tiny", "--max-steps", "5"])
        >>> args.objective, args.max_steps
        ('sup', 5)
    """
    parser = argparse.ArgumentParser(
        prog="python -m minicse",
        description="SimCSE sentence embeddings: train, evaluate, export.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    subparsers.required = True
    _add_train_parser(subparsers, "unsup")
    _add_train_parser(subparsers, "sup")
    evaluate = subparsers.add_parser(
        "evaluate",
        help="STS Spearman x100 of a model",
        description="Spearman x100 of cosine similarities on STS tasks + average.",
        epilog="example:\n  python -m minicse evaluate offline-minilm --pooling mean",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("model", metavar="MODEL", help="model name or folder")
    evaluate.add_argument(
        "--tasks", nargs="+", metavar="TASK", help="STS tasks (default: all seven)"
    )
    evaluate.add_argument("--split", default="test", help="test (default) or dev")
    evaluate.add_argument(
        "--text", default="raw", choices=("raw", "senteval"), help="text variant"
    )
    evaluate.add_argument(
        "--pooling", choices=_CHOICES["pooling"], help="pooler when MODEL is a name"
    )
    evaluate.add_argument("--batch-size", type=int, default=64, metavar="N")
    evaluate.add_argument(
        "--max-rows", type=int, metavar="N", help="first N pairs of each task"
    )
    evaluate.set_defaults(handler=_evaluate_command)
    export = subparsers.add_parser(
        "export",
        help="write a model or checkpoint in sentence-transformers layout",
        description="Load CHECKPOINT (a checkpoint-<step> folder or a saved model) "
        "and write it to OUTPUT; SentenceTransformer(OUTPUT) then loads it.",
        epilog="example:\n  python -m minicse export runs/unsup/checkpoint-200 out/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("checkpoint", metavar="CHECKPOINT")
    export.add_argument("output", metavar="OUTPUT")
    export.set_defaults(handler=_export_command)
    return parser


def _train_command(args: argparse.Namespace) -> int:
    from .presets import get_preset
    from .train import TrainConfig, train_sup, train_unsup

    overrides = {
        dest: getattr(args, dest)
        for _, dest, _, _ in _TRAIN_OPTIONS
        if getattr(args, dest) is not None
    }
    if getattr(args, "hard_negative_weight", None) is not None:
        overrides["hard_negative_weight"] = args.hard_negative_weight
    overrides.update(output_dir=args.output_dir, resume=args.resume)
    overrides["progress"] = not args.no_progress
    if args.no_eval:
        overrides["eval_steps"] = None
    preset = get_preset(args.preset) if args.preset or args.model is None else None
    if preset is None:
        config = getattr(TrainConfig, args.objective)(**overrides)
    else:
        config = TrainConfig.from_preset(preset.name, args.objective, **overrides)
    model = args.model or preset.model
    rows = args.max_rows
    if rows is None and preset is not None:
        rows = preset.corpus_rows if args.objective == "unsup" else preset.triplet_rows
    data = _load_data(args.objective, args.data, rows)
    train = train_unsup if args.objective == "unsup" else train_sup
    encoder = train(model, data, config=config)
    return _report(encoder, args.output_dir)


def _load_data(objective: str, data: str, max_rows: int | None) -> Any:
    from .data import load_corpus, load_nli_triplets

    if objective == "unsup":
        if data == "wiki1m":
            return load_corpus("wiki1m", max_rows=max_rows)
        return load_corpus(path=_existing(data), max_rows=max_rows)
    path = None if data == "nli" else _existing(data)
    return load_nli_triplets(path, max_rows=max_rows)


def _existing(path: str) -> Path:
    if not Path(path).is_file():
        raise FileNotFoundError(f"--data {path!r}: no such file")
    return Path(path)


def _report(encoder: Any, output_dir: str | None) -> int:
    import torch.distributed as dist

    history = getattr(encoder, "history", [])
    # train_* has left the process group by now: the launcher's RANK tells
    rank = dist.get_rank() if dist.is_initialized() else os.environ.get("RANK", "0")
    if str(rank).strip() not in ("", "0"):
        return 0
    devs = [r["dev"] for r in history if "dev" in r]
    if devs:
        print(f"best STS-B dev Spearman x100: {max(devs):.2f}")
    if history and "interrupted" in history[-1]:
        return 130  # the conventional exit status after Ctrl-C
    if output_dir:
        print(f"model saved to {output_dir}")
    return 0


def _load_model(name: str, pooling: str | None = None) -> Any:
    """A saved model folder, a checkpoint folder or a name for ``from_pretrained``."""
    from .encoder import SentenceEncoder

    path = Path(name)
    if (path / "minicse.json").is_file():  # a saved model or a checkpoint folder
        return SentenceEncoder.load(path)
    return SentenceEncoder.from_pretrained(name, pooling=pooling or "auto")


def _evaluate_command(args: argparse.Namespace) -> int:
    from .data import STS_TASKS
    from .evaluate import evaluate_sts

    encoder = _load_model(args.model, args.pooling)
    table = evaluate_sts(
        encoder,
        tasks=tuple(args.tasks or STS_TASKS),
        split=args.split,
        text=args.text,
        batch_size=args.batch_size,
        max_rows=args.max_rows,
    )
    print(table.to_string())
    return 0


def _export_command(args: argparse.Namespace) -> int:
    if not Path(args.checkpoint).exists():
        raise FileNotFoundError(f"CHECKPOINT {args.checkpoint!r} does not exist")
    encoder = _load_model(args.checkpoint)
    path = encoder.save(args.output)
    print(f"exported to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad arguments).

    Library errors about the inputs (``ValueError``, ``TypeError``,
    ``FileNotFoundError``) become ``error: ...`` and status 2, like argparse's.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except FloatingPointError as err:
        parser.exit(1, f"{parser.prog}: training stopped: {err}\n")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
