"""``python -m minicse train-unsup|train-sup|evaluate|export|data``: thin wrappers
over ``train_unsup``/``train_sup`` (a flag per ``TrainConfig`` field), ``evaluate_sts``,
``SentenceEncoder.save`` and ``write_data_folder``; works under ``torchrun``. See
chapters 6 and 7."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import fields
from inspect import getsource
from pathlib import Path
from typing import Any

from .config import Preset, TrainConfig, get_preset
from .pooling import POOLERS
from .utils import PRECISIONS

EPILOG = """\
examples (data: MINICSE_DATA or the hub; the book's chapters 6 and 7):
  python -m minicse train-unsup --preset cpu --output-dir runs/unsup [--resume]
  python -m minicse train-sup bert-base-uncased --preset gpu --output-dir runs/sup
  torchrun --nproc_per_node 2 -m minicse train-unsup tiny --preset smoke
  python -m minicse evaluate runs/unsup --tasks stsb sickr --split test
  python -m minicse export runs/unsup/checkpoint-200 exported/
  python -m minicse data data && export MINICSE_DATA=$PWD/data
"""
_ABOUT = {  # command: what it does, its --help
    "train-unsup": "unsupervised SimCSE: dropout views of unlabelled sentences",
    "train-sup": "supervised SimCSE: NLI (sent0, sent1, hard_neg) triplets",
    "evaluate": "Spearman x100 of cosine similarities on STS tasks, and the average",
    "export": "write a model or a checkpoint-<step> in sentence-transformers layout",
    "data": "write DIR in the data folder's layout (MINICSE_DATA) from the hub",
}
_ALIASES = {"num_epochs": ("--epochs",)}  # the short spellings kept
_CHOICES = {"pooling": POOLERS, "precision": PRECISIONS}


def _int_or_auto(value: str) -> int | str:
    """``auto`` or a count (TrainConfig checks the range)."""
    return value if value == "auto" else int(value)


# a TrainConfig annotation (less "| None") -> (argparse type, metavar)
_TYPES = {"int": (int, "N"), "float": (float, "X"), "str": (str, None)}
_TYPES["int | str"] = (_int_or_auto, "N|auto")


def _train_flags(parser: argparse.ArgumentParser, objective: str) -> None:
    """Data and preset flags, then one per TrainConfig field (help: its comment)."""
    data, add = ("wiki1m" if objective == "unsup" else "nli"), parser.add_argument
    text = "hub name, folder, 'tiny' or 'offline-minilm' (default: the preset's)"
    add("model", nargs="?", metavar="MODEL", help=text)
    add("--data", default=data, help=f"'{data}' or a file (default: {data})")
    add("--max-rows", type=int, metavar="N", help="use only the first N rows")
    text = "run sizes: smoke (CI), cpu (laptop), gpu (the paper); default: paper"
    add("--preset", choices=("smoke", "cpu", "gpu", "auto"), help=text)
    add("--no-eval", action="store_true", help="no dev evaluation (keep the last)")
    comment = r"^    (\w+): [^#\n]*# (.*)$"
    notes = dict(re.findall(comment, getsource(TrainConfig), re.M))
    skip = {"objective", "mlp"}  # the command's own; mlp's None has no spelling
    skip |= {"hard_negative_weight"} if objective == "unsup" else set()  # sup's only
    for f in (f for f in fields(TrainConfig) if f.name not in skip):
        flags = (f"--{f.name.replace('_', '-')}", *_ALIASES.get(f.name, ()))
        help = notes.get(f.name, "").replace("%", "%%")
        if f.type == "bool":  # --resume, --no-resume; neither: the config's own
            add(*flags, action=argparse.BooleanOptionalAction, help=help)
            continue
        kind, metavar = _TYPES[f.type.removesuffix(" | None")]
        add(*flags, type=kind, choices=_CHOICES.get(f.name), metavar=metavar, help=help)
    parser.set_defaults(objective=objective)


def build_parser() -> argparse.ArgumentParser:
    """The ``minicse`` argument parser (sub-commands and their options)."""
    kw = dict(epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    about = "SimCSE sentence embeddings: train, evaluate, export."
    parser = argparse.ArgumentParser(prog="python -m minicse", description=about, **kw)
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    sub = {
        name: commands.add_parser(name, help=text, description=text, **kw)
        for name, text in _ABOUT.items()
    }
    _train_flags(sub["train-unsup"], "unsup")
    _train_flags(sub["train-sup"], "sup")
    add = sub["evaluate"].add_argument
    add("model", metavar="MODEL", help="model name or folder")
    add("--tasks", nargs="+", metavar="TASK", help="STS tasks (default: all seven)")
    add("--split", default="test", help="test (default) or dev")
    add("--text", default="raw", choices=("raw", "senteval"), help="text variant")
    add("--pooling", choices=POOLERS, help="pooler when MODEL is a name")
    add("--batch-size", type=int, default=64, metavar="N")
    add("--max-rows", type=int, metavar="N", help="first N pairs of each task")
    text = "SentEval's: all (the paper's, default), mean or wmean of subsets"
    add("--aggregate", default="all", choices=("all", "mean", "wmean"), help=text)
    add("--max-length", type=int, metavar="N", help="truncate (default: never)")
    add("--language", help="multilingual STS-B (with --tasks stsb): de, es, fr, ...")
    sub["export"].add_argument("checkpoint", metavar="CHECKPOINT")
    sub["export"].add_argument("output", metavar="OUTPUT")
    add = sub["data"].add_argument
    add("folder", metavar="DIR")
    text = "first N hub NLI triplets (default: 5881, the book folder's size)"
    add("--nli-rows", type=int, default=5881, metavar="N", help=text)
    text = "first N wiki1m sentences (default: 11914, the book folder's size)"
    add("--corpus-rows", type=int, default=11914, metavar="N", help=text)
    return parser


def _train(args: argparse.Namespace) -> int:
    from .data import load_corpus, load_nli_triplets
    from .train import train_sup, train_unsup

    names = {f.name for f in fields(TrainConfig)} - {"objective"}
    overrides = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if args.no_eval:
        overrides["eval_steps"] = None
    paper = Preset("paper", args.model)  # a MODEL without --preset: no sizes, all rows
    preset = get_preset(args.preset) if args.preset or args.model is None else paper
    config = TrainConfig.from_preset(preset, args.objective, **overrides)
    unsup, rows = args.objective == "unsup", args.max_rows
    if rows is None:
        rows = preset.corpus_rows if unsup else preset.triplet_rows
    named = args.data == ("wiki1m" if unsup else "nli")
    if not named and not Path(args.data).is_file():
        raise FileNotFoundError(f"--data {args.data!r}: no such file")
    load = load_corpus if unsup else load_nli_triplets
    data = load(path=None if named else Path(args.data), max_rows=rows)
    train = train_unsup if unsup else train_sup
    encoder = train(args.model or preset.model, data, config=config)
    return _report(encoder, config.output_dir)


def _report(encoder: Any, output_dir: str | None) -> int:
    """Print the best dev score and where the model went (on rank 0 only)."""
    if os.environ.get("RANK", "0").strip() not in ("", "0"):  # torchrun's rank
        return 0  # (train_* has left the process group by now)
    if devs := [r["dev"] for r in encoder.history if "dev" in r]:
        print(f"best {encoder.selected_on['dev']} Spearman x100: {max(devs):.2f}")
    if encoder.history and "interrupted" in encoder.history[-1]:
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


def _evaluate(args: argparse.Namespace) -> int:
    from .data import STS_TASKS
    from .evaluate import evaluate_sts

    names = "split text batch_size max_rows aggregate max_length language".split()
    options = {k: getattr(args, k) for k in names}
    tasks = args.tasks or (["stsb"] if args.language else STS_TASKS)
    encoder = _load_model(args.model, args.pooling)
    print(evaluate_sts(encoder, tasks=tuple(tasks), **options).to_string())
    return 0


def _export(args: argparse.Namespace) -> int:
    if not Path(args.checkpoint).exists():
        raise FileNotFoundError(f"CHECKPOINT {args.checkpoint!r} does not exist")
    print(f"exported to {_load_model(args.checkpoint).save(args.output)}")
    return 0


def _data(args: argparse.Namespace) -> int:
    from .data import write_data_folder

    write_data_folder(args.folder, args.nli_rows, args.corpus_rows)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit status: 2 for bad input (``error: ...``,
    as argparse's), 1 for a diverged training."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"evaluate": _evaluate, "export": _export, "data": _data}
    try:
        return handlers.get(args.command, _train)(args)  # else train-unsup/-sup
    except (ValueError, TypeError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except FloatingPointError as err:
        parser.exit(1, f"{parser.prog}: training stopped: {err}\n")
