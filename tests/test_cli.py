"""Tests for the command line: ``python -m minicse ...`` (minicse.cli)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import hubcache
import pandas as pd
import pytest
from hubcache import LANGUAGES

from minicse.cli import build_parser, main
from minicse.data import _SPLITS, STS_TASKS, load_corpus, load_nli_triplets, load_sts
from minicse.encoder import SentenceEncoder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(data_path: Path, tmp_path_factory) -> Path:
    lines = (data_path / "corpus" / "wiki1m_head.txt").read_text().splitlines()
    file = tmp_path_factory.mktemp("cli") / "corpus.txt"
    file.write_text("\n".join(list(dict.fromkeys(lines))[:32]) + "\n")
    return file


@pytest.mark.parametrize(
    "command", ["train-unsup", "train-sup", "evaluate", "export", "data"]
)
def test_help_for_each_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m minicse " + command)
    assert "example" in text


def test_top_level_help_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "minicse", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    for command in ("train-unsup", "train-sup", "evaluate", "export", "torchrun"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "required: COMMAND"),
        (["train-unsup", "tiny", "--batch-size", "many"], "invalid int value: 'many'"),
        (["train-unsup", "--preset", "laptop"], "invalid choice: 'laptop'"),
        (["train-sup", "tiny", "--precision", "fp8"], "invalid choice: 'fp8'"),
        (
            ["train-unsup", "tiny", "--eval-steps", "0"],
            "eval_steps must be an int >= 1 or None, got int 0",
        ),
        (["train-unsup", "tiny", "--data", "missing.txt"], "no such file"),
        (["train-unsup", "tiny", "--resume"], "resume=True needs output_dir"),
        (["train-unsup", "tiny", "--dev", "stsb-xx"], "'stsb-<language>'"),
        (["train-unsup", "tiny", "--dev", "no/dev.tsv"], "no such .tsv/.csv file"),
        (["export", "no/such/checkpoint", "out"], "does not exist"),
        (["export", "only-one-arg"], "the following arguments are required: OUTPUT"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_parser_maps_flags_to_config_fields():
    args = build_parser().parse_args(
        ["train-sup", "tiny", "--learning-rate", "1e-4", "--epochs", "2"]
    )
    assert (args.learning_rate, args.num_epochs, args.objective) == (1e-4, 2, "sup")


def test_train_export_evaluate(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train-unsup",
            "tiny",
            "--data",
            str(corpus),
            "--batch-size",
            "8",
            "--max-steps",
            "2",
            "--eval-steps",
            "2",
            "--dev-rows",
            "30",
            "--output-dir",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    assert "best stsb Spearman x100" in capsys.readouterr().out
    exported = tmp_path / "exported"
    assert main(["export", str(out / "checkpoint-2"), str(exported)]) == 0
    assert (exported / "modules.json").is_file()
    model = SentenceEncoder.load(exported)
    assert model.encode(["a sentence"]).shape == (1, model.hidden_size)
    code = main(
        [
            "evaluate",
            str(exported),
            "--tasks",
            "stsb",
            "--split",
            "dev",
            "--max-rows",
            "30",
        ]
    )
    assert code == 0 and "stsb" in capsys.readouterr().out


@pytest.mark.parametrize("dev", ["stsb-de", "file", "short"])
def test_train_selects_on_the_dev_flag(dev, corpus, tmp_path, capsys):
    import json

    german = load_sts("stsb", "dev", language="de", max_rows=30)
    file = tmp_path / "dev.csv"
    german.head(10 if dev == "short" else 30).to_csv(file, index=False)
    flag = "stsb-de" if dev == "stsb-de" else str(file)
    argv = ["train-unsup", "tiny", "--data", str(corpus), "--batch-size", "8"]
    argv += ["--max-steps", "2", "--eval-steps", "2", "--dev", flag]
    argv += ["--dev-rows", "30", "--output-dir", str(tmp_path / "run")]
    if dev == "short":
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "dev has 10 pairs" in capsys.readouterr().err
        assert not (tmp_path / "run").exists()  # nothing was trained
        return
    assert main([*argv, "--no-progress"]) == 0
    saved = json.loads((tmp_path / "run" / "minicse.json").read_text())
    assert saved["selected_on"]["dev"] == flag
    assert saved["selected_on"]["pairs"] == 30


def test_only_rank_0_reports(monkeypatch, capsys):
    """train_* has left the process group when the CLI reports: RANK decides."""
    from minicse.cli import _report

    class Trained:
        history = [{"step": 3, "dev": 12.5}]
        selected_on = {"dev": "stsb-de", "pairs": 1500}

    monkeypatch.setenv("RANK", "1")
    assert _report(Trained(), "out") == 0
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("RANK", "0")
    assert _report(Trained(), "out") == 0
    assert capsys.readouterr().out.splitlines() == [
        "best stsb-de Spearman x100: 12.50",
        "model saved to out",
    ]


def test_evaluate_options_reach_evaluate_sts(monkeypatch, capsys):
    import minicse.evaluate as evaluate_module

    seen = {}

    def fake(encoder, tasks, **options):
        seen.update(options, tasks=tasks)
        return evaluate_module.pd.DataFrame({"spearman": [1.0]}, index=["stsb"])

    monkeypatch.setattr(evaluate_module, "evaluate_sts", fake)
    argv = ["evaluate", "tiny", "--language", "de", "--aggregate", "wmean"]
    assert main([*argv, "--max-length", "32"]) == 0
    assert seen["tasks"] == ("stsb",) and seen["language"] == "de"
    assert seen["aggregate"] == "wmean" and seen["max_length"] == 32
    assert main(["evaluate", "tiny", "--max-rows", "3"]) == 0
    assert seen["aggregate"] == "all" and seen["max_length"] is None
    assert len(seen["tasks"]) == 7


def test_dropout_option_reaches_train_config():
    from minicse.cli import build_parser

    args = build_parser().parse_args(["train-unsup", "tiny", "--dropout", "0.0"])
    assert args.dropout == 0.0
    assert build_parser().parse_args(["train-sup", "tiny"]).dropout is None


SPLITS = [(t, s) for t in STS_TASKS for s in _SPLITS[t]]
# files whose hub content equals the data folder's (the hub copy is made from it);
# the raw STS files with SentEval's score strings (SICK-R's raw text is the tar's)
SAME = ["corpus/wiki1m_head.txt", "nli/triplets.tsv"]  # the hub's NLI rows differ
SAME += [f"sts/senteval/{task}.{split}.tsv" for task, split in SPLITS]
SAME += [f"sts/{task}.{split}.tsv" for task, split in SPLITS if task != "sickr"]
SAME += [f"sts/stsb_multi_mt/{x}.{s}.tsv" for x in LANGUAGES for s in _SPLITS["stsb"]]


def test_data_command_writes_a_data_folder_from_the_hub(hub_home, data_path, tmp_path):
    out = hubcache.run_offline(hub_home, "-m", "minicse", "data", str(tmp_path / "d"))
    assert f"set MINICSE_DATA={tmp_path / 'd'}" in out
    folder, readme = tmp_path / "d", (tmp_path / "d/README.md").read_text()
    for name in SAME:  # equal content, equal sha256, listed in README
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert digest == hashlib.sha256((data_path / name).read_bytes()).hexdigest()
        assert f"| {name} |" in readme and digest in readme
    for task in STS_TASKS:
        for split in _SPLITS[task]:
            for text in ("raw", "senteval"):
                mine = load_sts(task, split, text, path=folder, subsets=True)
                want = load_sts(task, split, text, path=data_path, subsets=True)
                if (task, text) == ("sickr", "raw"):  # the tar's text, as from the hub
                    want = load_sts(
                        task, split, "senteval", path=data_path, subsets=True
                    )
                pd.testing.assert_frame_equal(mine, want)
                name = f"sts/{'senteval/' * (text == 'senteval')}{task}.{split}.tsv"
                assert f"| {name} | {len(mine)} |" in readme
    for file in sorted((data_path / "sts/meta").iterdir()):  # the hub's columns
        mine = pd.DataFrame(hubcache.read_tsv(folder / "sts/meta" / file.name))
        want = pd.DataFrame(hubcache.read_tsv(file))
        assert list(mine.columns) == [
            c for c in want if c not in ("source1", "source2")
        ]
        pd.testing.assert_frame_equal(mine, want[mine.columns])
    assert load_corpus(path=folder) == load_corpus(path=data_path)
    pd.testing.assert_frame_equal(
        load_nli_triplets(path=folder), load_nli_triplets(path=data_path)
    )
