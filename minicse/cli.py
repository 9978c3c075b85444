"""Command line: ``python -m minicse train-unsup|train-sup|evaluate|export|data``.

Thin wrappers over ``train_unsup``, ``train_sup``, ``evaluate_sts``,
``SentenceEncoder.save`` and the readers (``data``: the data folder from the
hub); argparse lives here only. Works under ``torchrun``.
See chapters 6 and 7.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
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
PRESET_CHOICES = ("smoke", "cpu", "gpu", "auto")
_CHOICES = {  # pooling: minicse.pooling.POOLERS, spelled out: --help needs no torch
    "pooling": ("cls", "cls_before_pooler", "mean", "first_last_mean", "last2_mean"),
    "precision": ("auto", "bf16", "fp16", "fp32"),
}


def _int_or_auto(value: str) -> int | str:
    """``auto`` or a count (TrainConfig checks the range)."""
    return value if value == "auto" else int(value)


# (flag, TrainConfig field, type, help); the last one is train-sup's only
_TRAIN_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--batch-size", "batch_size", int, "global batch size (paper: 64 unsup, 512 sup)"),
    ("--learning-rate", "learning_rate", float, "peak AdamW learning rate"),
    ("--epochs", "num_epochs", int, "passes over the data"),
    ("--max-steps", "max_steps", int, "optimizer steps (overrides --epochs)"),
    ("--max-length", "max_length", int, "truncation length in tokens (paper: 32)"),
    ("--temperature", "temperature", float, "InfoNCE temperature (paper: 0.05)"),
    ("--pooling", "pooling", str, "cls (paper), cls_before_pooler, mean, ..."),
    ("--eval-steps", "eval_steps", int, "evaluate on the dev pairs every N steps"),
    ("--dev", "dev", str, "select on stsb (default), stsb-de, ... or a .tsv/.csv"),
    ("--dev-rows", "dev_rows", int, "use only the first N dev pairs"),
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
    ("--dropout", "dropout", float, "every dropout rate (default: the model's)"),
    ("--hard-negative-weight", "hard_negative_weight", float, "log(alpha) (paper: 0)"),
]


def _command(commands: Any, name: str, help: str, about: str, epilog: str, handler):
    """Add sub-command ``name``; its description and epilog keep their line breaks."""
    parser = commands.add_parser(
        name,
        help=help,
        description=about,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def _add_train_parser(commands: Any, objective: str) -> None:
    data = "wiki1m" if objective == "unsup" else "nli"
    what = {
        "unsup": "Unsupervised SimCSE: dropout views of unlabelled sentences.",
        "sup": "Supervised SimCSE: NLI (sent0, sent1, hard_neg) triplets.",
    }[objective]
    more = " Writes the best model (on --dev, STS-B dev by default) to --output-dir."
    parser = _command(
        commands, f"train-{objective}", what, what + more, EPILOG, _train_command
    )
    add = parser.add_argument
    text = "hub name, local folder, 'tiny' or 'offline-minilm' (default: the "
    add("model", nargs="?", metavar="MODEL", help=text + "preset's model)")
    add("--data", default=data, help=f"'{data}' or a file (default: {data})")
    add("--max-rows", type=int, metavar="N", help="use only the first N rows")
    text = "run sizes: smoke (CI), cpu (laptop), gpu (the paper); default: paper"
    add("--preset", choices=PRESET_CHOICES, help=text)
    add("--output-dir", metavar="DIR", help="folder for the best model + checkpoints")
    add("--resume", action="store_true", help="continue from --output-dir")
    add("--no-eval", action="store_true", help="no dev evaluation (keep the last)")
    add("--no-progress", action="store_true", help="no progress bar")
    options = _TRAIN_OPTIONS if objective == "sup" else _TRAIN_OPTIONS[:-1]
    for flag, dest, kind, text in options:
        metavar = {int: "N", float: "X"}.get(kind, dest.upper())
        choices = _CHOICES.get(dest)
        add(flag, dest=dest, type=kind, choices=choices, metavar=metavar, help=text)
    parser.set_defaults(objective=objective)


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
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_train_parser(commands, "unsup")
    _add_train_parser(commands, "sup")
    evaluate = _command(
        commands,
        "evaluate",
        "STS Spearman x100 of a model",
        "Spearman x100 of cosine similarities on STS tasks + average.",
        "example:\n  python -m minicse evaluate offline-minilm --pooling mean",
        _evaluate_command,
    )
    add = evaluate.add_argument
    add("model", metavar="MODEL", help="model name or folder")
    add("--tasks", nargs="+", metavar="TASK", help="STS tasks (default: all seven)")
    add("--split", default="test", help="test (default) or dev")
    add("--text", default="raw", choices=("raw", "senteval"), help="text variant")
    add("--pooling", choices=_CHOICES["pooling"], help="pooler when MODEL is a name")
    add("--batch-size", type=int, default=64, metavar="N")
    add("--max-rows", type=int, metavar="N", help="first N pairs of each task")
    add(
        "--aggregate",
        default="all",
        choices=("all", "mean", "wmean"),
        help="SentEval's: all (the paper's, default), mean or wmean of subsets",
    )
    add("--max-length", type=int, metavar="N", help="truncate (default: never)")
    add("--language", help="multilingual STS-B (with --tasks stsb): de, es, fr, ...")
    export = _command(
        commands,
        "export",
        "write a model or checkpoint in sentence-transformers layout",
        "Load CHECKPOINT (a checkpoint-<step> folder or a saved model) and write it "
        "to OUTPUT; SentenceTransformer(OUTPUT) then loads it.",
        "example:\n  python -m minicse export runs/unsup/checkpoint-200 out/",
        _export_command,
    )
    export.add_argument("checkpoint", metavar="CHECKPOINT")
    export.add_argument("output", metavar="OUTPUT")
    data = _command(
        commands,
        "data",
        "write the data folder (MINICSE_DATA's layout) from the Hugging Face hub",
        "Write DIR in the layout of the book's data folder, from the hub sources that "
        "minicse's readers use, with DIR/README.md (rows, sha256, sources); then set "
        "MINICSE_DATA=DIR.",
        "example:\n  python -m minicse data data && export MINICSE_DATA=$PWD/data",
        _data_command,
    )
    data.add_argument("folder", metavar="DIR")
    text = "first N hub NLI triplets (default: 5881, the book folder's size)"
    data.add_argument("--nli-rows", type=int, default=5881, metavar="N", help=text)
    text = "first N wiki1m sentences (default: 11914, the book folder's size)"
    data.add_argument("--corpus-rows", type=int, default=11914, metavar="N", help=text)
    return parser


def _train_command(args: argparse.Namespace) -> int:
    from .presets import get_preset
    from .train import TrainConfig, train_sup, train_unsup

    values = {dest: getattr(args, dest, None) for _, dest, _, _ in _TRAIN_OPTIONS}
    overrides = {k: v for k, v in values.items() if v is not None}
    overrides.update(output_dir=args.output_dir, resume=args.resume)
    overrides.update(progress=not args.no_progress)
    if args.no_eval:
        overrides["eval_steps"] = None
    preset = get_preset(args.preset) if args.preset or args.model is None else None
    if preset is None:
        config = getattr(TrainConfig, args.objective)(**overrides)
    else:
        config = TrainConfig.from_preset(preset.name, args.objective, **overrides)
    rows = args.max_rows
    if rows is None and preset is not None:
        rows = preset.corpus_rows if args.objective == "unsup" else preset.triplet_rows
    data = _load_data(args.objective, args.data, rows)
    train = train_unsup if args.objective == "unsup" else train_sup
    encoder = train(args.model or preset.model, data, config=config)
    return _report(encoder, args.output_dir)


def _load_data(objective: str, data: str, max_rows: int | None) -> Any:
    from .data import load_corpus, load_nli_triplets

    path = None if data == ("wiki1m" if objective == "unsup" else "nli") else Path(data)
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"--data {data!r}: no such file")
    load = load_corpus if objective == "unsup" else load_nli_triplets
    return load(path=path, max_rows=max_rows)


def _report(encoder: Any, output_dir: str | None) -> int:
    """Print the best dev score and where the model went (on rank 0 only)."""
    import torch.distributed as dist

    history = getattr(encoder, "history", [])
    # train_* has left the process group by now: the launcher's RANK tells
    rank = dist.get_rank() if dist.is_initialized() else os.environ.get("RANK", "0")
    if str(rank).strip() not in ("", "0"):
        return 0
    devs = [r["dev"] for r in history if "dev" in r]
    if devs:
        name = (getattr(encoder, "selected_on", None) or {}).get("dev") or "dev"
        print(f"best {name} Spearman x100: {max(devs):.2f}")
    if history and "interrupted" in history[-1]:
        return 130  # the conventional exit status after Ctrl-C
    if output_dir:
        print(f"model saved to {output_dir}")
    return 0


def _load_model(name: str, pooling: str | None = None) -> Any:
    """A saved model or checkpoint folder, else a name for ``from_pretrained``."""
    from .encoder import SentenceEncoder

    if (Path(name) / "minicse.json").is_file():
        return SentenceEncoder.load(name)
    return SentenceEncoder.from_pretrained(name, pooling=pooling or "auto")


def _evaluate_command(args: argparse.Namespace) -> int:
    from .data import STS_TASKS
    from .evaluate import evaluate_sts

    names = "split text batch_size max_rows aggregate max_length language".split()
    options = {k: getattr(args, k) for k in names}
    tasks = args.tasks or (["stsb"] if args.language else STS_TASKS)
    encoder = _load_model(args.model, args.pooling)
    print(evaluate_sts(encoder, tasks=tuple(tasks), **options).to_string())
    return 0


def _export_command(args: argparse.Namespace) -> int:
    if not Path(args.checkpoint).exists():
        raise FileNotFoundError(f"CHECKPOINT {args.checkpoint!r} does not exist")
    print(f"exported to {_load_model(args.checkpoint).save(args.output)}")
    return 0


# the data folder's STS14 subset order (SentEval's tar has images before OnWN)
_STS14 = "deft-forum deft-news headlines OnWN images tweet-news".split()
_NOTES = """Written by `python -m minicse data` from the hub: raw STS from
`mteb/<task>-sts` and `sentence-transformers/stsb` (x 5); SentEval's text, subsets
(`sts/meta/`) and SICK-R from SimCSE's `senteval.tar`; `PhilipMay/stsb_multi_mt`;
the first {nli} rows of SimCSE's `nli_for_simcse.csv` (SNLI+MNLI train, not the
book folder's SNLI dev+test) and {corpus} lines of `wiki1m_for_simcse.txt`.
Float scores print as `2.5`, not `2.500`. Licenses: each dataset's hub page
(SICK-R: non-commercial).
"""


def _data_command(args: argparse.Namespace) -> int:
    os.environ.pop("MINICSE_DATA", None)  # this process reads every file from the hub
    files, root = _hub_files(args.nli_rows, args.corpus_rows), Path(args.folder)
    table = [f"| {n} | {len(files[n])} | {sha} |" for n, sha in _write(root, files)]
    notes = _NOTES.format(nli=args.nli_rows, corpus=args.corpus_rows)
    head = ["# Data folder\n", notes, "| file | rows | sha256 |", "|---|---:|---|"]
    (root / "README.md").write_text("\n".join(head + table) + "\n", encoding="utf-8")
    print(f"wrote {len(files)} files to {root}; set MINICSE_DATA={root.resolve()}")
    return 0


def _hub_files(nli_rows: int, corpus_rows: int) -> dict[str, Any]:
    """{path in the data folder: its frame or lines}, read from the hub."""
    import numpy as np

    from .hub import hub_file
    from ._senteval import STS_SUBSETS, senteval_frame, senteval_meta
    from .data import _SPLITS, STS_TASKS, load_corpus, load_nli_triplets, load_sts

    tar, files = hub_file("senteval.tar", "SentEval's STS files"), {}
    for task in STS_TASKS:
        for split in _SPLITS[task]:
            name, raw = f"{task}.{split}", load_sts(task, split)
            frame = senteval_frame(tar, task, split, "senteval")  # scores as written
            if task == "sts14":
                order = frame.subset.map(_STS14.index).argsort(kind="stable")
                frame = frame.iloc[order].reset_index(drop=True)
            subsets = task in STS_SUBSETS
            meta = frame[["subset"]] if subsets else senteval_meta(tar, task, split)
            scores = frame.score.astype(float).to_numpy()  # STS-B's: 0-1 x 5 on the hub
            if len(raw) == len(frame) and np.allclose(raw.score, scores, atol=1e-9):
                meta.insert(0, "row", range(1, len(meta) + 1))  # one for both texts
                files[f"sts/meta/{name}.meta.tsv"] = meta
                frame = frame.drop(columns="subset")
            else:  # SentEval's file keeps its subset column
                print(f"{name}: the hub's raw rows are not in senteval.tar's order")
                frame = frame if subsets else frame.drop(columns="subset")
            files[f"sts/{name}.tsv"], files[f"sts/senteval/{name}.tsv"] = raw, frame
    for lang in ("de", "en", "es", "fr", "zh"):
        for split in ("train", "dev", "test"):
            frame = load_sts("stsb", split, language=lang)
            files[f"sts/stsb_multi_mt/{lang}.{split}.tsv"] = frame
    files["nli/triplets.tsv"] = load_nli_triplets(max_rows=nli_rows)
    files["corpus/wiki1m_head.txt"] = load_corpus(max_rows=corpus_rows)
    return files


def _cell(value: Any) -> str:
    """A TSV field; floats at 15 digits, which drops the noise of STS-B's x 5."""
    return repr(float(f"{value:.15g}")) if isinstance(value, float) else str(value)


def _write(root: Path, files: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Write frames as TSV (a header, no quoting) and lists as lines; yield sha256s."""
    import hashlib

    for name, content in files.items():
        if not isinstance(content, list):
            cells = content.map(_cell).to_numpy()
            if any("\t" in cell or "\n" in cell for cell in cells.ravel()):
                raise ValueError(f"{name}: a field holds a tab or a newline")
            content = ["\t".join(content.columns), *map("\t".join, cells)]
        payload = "".join(line + "\n" for line in content).encode("utf-8")
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(payload)
        yield name, hashlib.sha256(payload).hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Input errors (``ValueError``, ``TypeError``, ``FileNotFoundError``) exit with
    status 2 and ``error: ...``, like argparse's; a diverged training with 1.

    Example:
        >>> main(["export", "no/such/checkpoint", "out"])
        Traceback (most recent call last):
        SystemExit: 2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except FloatingPointError as err:
        parser.exit(1, f"{parser.prog}: training stopped: {err}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
