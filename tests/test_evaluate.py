"""Tests for minicse.evaluate: correlations, pair scoring, the STS table."""

from __future__ import annotations

import csv
import math
import os
import re
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from minicse import evaluate as evaluate_module
from minicse.data import STS_TASKS, load_sts
from minicse.evaluate import (
    evaluate_sts,
    pearson,
    score_sts_pairs,
    spearman,
    sts_dev_metrics,
    sts_positive_pairs,
)


class LetterCounts:
    """A fast fake encoder: counts of each letter, and a log of what it encoded."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts, batch_size=64):
        self.calls.append(list(texts))
        rows = [
            [t.lower().count(c) + 0.1 for c in string.ascii_lowercase] for t in texts
        ]
        return torch.tensor(rows, dtype=torch.float32)


def cosine_reference(encoder, sentences1, sentences2, scores) -> float:
    """Spearman x 100 done the plain way: encode both columns, scipy's spearmanr."""
    a = encoder.encode(sentences1).double().numpy()
    b = encoder.encode(sentences2).double().numpy()
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return 100 * stats.spearmanr(cos, scores).statistic


# ------------------------------------------------------------------ correlations


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [2, 3, 10, 200])
def test_correlations_match_scipy_with_ties(seed, n):
    rng = np.random.default_rng(seed)
    x = np.r_[0.0, 9.0, rng.integers(0, 5, n - 2)]  # few distinct values: ties
    y = x + rng.integers(0, 3, n)  # never constant: y[1] - y[0] >= 7
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)


def test_correlations_match_scipy_on_continuous_data():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=500), rng.normal(size=500)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)


def test_perfect_and_reversed_rankings():
    x = [0.1, 0.5, 0.2, 3.0]
    assert spearman(x, [1, 3, 2, 4]) == 1.0
    assert spearman(x, np.exp(x)) == 1.0  # monotonic, not linear
    assert spearman(x, [-v for v in x]) == -1.0
    assert pearson(x, [2 * v + 1 for v in x]) == pytest.approx(1.0)


def test_inputs_may_be_tensors_arrays_or_lists():
    x = torch.tensor([1.0, 2.0, 4.0])
    assert spearman(x, np.array([1, 2, 3])) == spearman([1, 2, 4], (1, 2, 3)) == 1.0


@pytest.mark.parametrize("func", [spearman, pearson])
def test_correlation_input_errors(func):
    with pytest.raises(ValueError, match="x is constant"):
        func([2, 2, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="y is constant"):
        func([1, 2, 3], [0, 0, 0])
    with pytest.raises(ValueError, match="same length"):
        func([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        func([1], [1])
    with pytest.raises(ValueError, match="NaN"):
        func([1, float("nan"), 3], [1, 2, 3])
    with pytest.raises(ValueError, match="1-D"):
        func([[1, 2], [3, 4]], [1, 2])
    with pytest.raises(TypeError, match="numbers"):
        func(["a", "b"], [1, 2])


# ------------------------------------------------------------------ pair scoring


def test_score_sts_pairs_matches_plain_reference():
    frame = load_sts("stsb", "dev", max_rows=300)
    s1, s2, gold = list(frame.sentence1), list(frame.sentence2), frame.score
    expected = cosine_reference(LetterCounts(), s1, s2, gold)
    assert score_sts_pairs(LetterCounts(), s1, s2, gold) == pytest.approx(expected)


def test_score_sts_pairs_encodes_each_distinct_sentence_once():
    encoder = LetterCounts()
    s1, s2 = ["a cat", "a dog", "a cat"], ["a dog", "bird", "a cow"]
    score_sts_pairs(encoder, s1, s2, [3.0, 1.0, 2.0], batch_size=2)
    assert len(encoder.calls) == 1
    assert sorted(encoder.calls[0]) == ["a cat", "a cow", "a dog", "bird"]


def test_perfect_encoder_gives_100():
    class Oracle:  # cosine = gold / 5 for each pair
        def encode(self, texts, batch_size=64):
            rows = [[1.0, 0.0] if t.startswith("x") else None for t in texts]
            for i, t in enumerate(texts):
                if rows[i] is None:
                    angle = np.arccos(float(t.split()[1]) / 5)
                    rows[i] = [np.cos(angle), np.sin(angle)]
            return torch.tensor(rows, dtype=torch.float32)

    gold = [0.5, 4.0, 2.5, 5.0]
    s2 = [f"y {g}" for g in gold]
    assert score_sts_pairs(Oracle(), ["x"] * 4, s2, gold) == pytest.approx(100.0)


def test_score_sts_pairs_errors():
    enc = LetterCounts()
    with pytest.raises(TypeError, match="encode"):
        score_sts_pairs(object(), ["a", "b"], ["c", "d"], [1, 2])
    with pytest.raises(ValueError, match="same length"):
        score_sts_pairs(enc, ["a", "b"], ["c"], [1, 2])
    with pytest.raises(ValueError, match="scores must have the same length"):
        score_sts_pairs(enc, ["a", "b"], ["c", "d"], [1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        score_sts_pairs(enc, ["a", " "], ["c", "d"], [1, 2])
    with pytest.raises(TypeError, match="single string"):
        score_sts_pairs(enc, "ab", ["c", "d"], [1, 2])
    with pytest.raises(ValueError, match="scores contains NaN"):
        score_sts_pairs(enc, ["a", "b"], ["c", "d"], [1, float("nan")])
    with pytest.raises(ValueError, match="batch_size"):
        score_sts_pairs(enc, ["a", "b"], ["c", "d"], [1, 2], batch_size=0)


@pytest.fixture
def no_data_loading(monkeypatch):
    """evaluate_sts must not reach load_sts: it fails the test if it does."""

    def load_sts(*args, **kwargs):
        raise AssertionError("data was loaded before the encoder was checked")

    monkeypatch.setattr(evaluate_module, "load_sts", load_sts)


@pytest.mark.parametrize(
    "name",
    ["princeton-nlp/unsup-simcse-bert-base-uncased", b"bert", Path("runs/simcse")],
    ids=["str", "bytes", "path"],
)
def test_model_name_instead_of_encoder_says_how_to_build_one(no_data_loading, name):
    shown = os.fsdecode(name)
    hint = f"SentenceEncoder.from_pretrained({shown!r})"
    with pytest.raises(TypeError, match="encoder must be a SentenceEncoder") as info:
        evaluate_sts(name, "stsb")
    assert hint in str(info.value) and "encode(texts, batch_size)" in str(info.value)
    with pytest.raises(TypeError, match=re.escape(hint)):
        score_sts_pairs(name, ["a", "b"], ["c", "d"], [1, 2])


@pytest.mark.parametrize("encoder", [object(), 3, None])
def test_object_without_encode_is_rejected_before_loading(no_data_loading, encoder):
    with pytest.raises(TypeError, match=r"must have an encode\(texts, batch_size\)"):
        evaluate_sts(encoder)


def test_encoder_returning_wrong_rows_is_caught():
    class Broken:
        def encode(self, texts, batch_size=64):
            return torch.ones(len(texts) - 1, 3)

    with pytest.raises(ValueError, match="returned 2 rows for 3 texts"):
        score_sts_pairs(Broken(), ["a", "b"], ["c", "a"], [1, 2])


def test_sts_dev_metrics_on_axes():
    """Moved from the docstring: a, b, c are the axes; the two pairs hold one
    identical pair (score 5) and one orthogonal pair (score 1)."""

    class Axes:
        def encode(self, texts, batch_size):
            return torch.tensor([[t.count(c) for c in "abc"] for t in texts]).float()

    m = sts_dev_metrics(Axes(), ["a", "b"], ["a", "c"], [5, 1])
    assert round(m["dev"], 6) == 100.0 and m["alignment"] == 0.0
    assert round(m["uniformity"], 6) == -4.0  # log e^-4: every distinct pair at |d|^2 2
    none_above_4 = sts_dev_metrics(Axes(), ["a", "b"], ["a", "c"], [3, 1])
    assert math.isnan(none_above_4["alignment"])


# ------------------------------------------------------------------ the STS table


@pytest.fixture(scope="module")
def letter_table():
    encoder = LetterCounts()
    return encoder, evaluate_sts(encoder)


def test_evaluate_sts_table_shape_and_average(letter_table):
    _, table = letter_table
    assert list(table.index) == [*STS_TASKS, "avg"]
    assert list(table.columns) == ["spearman", "n_pairs"]
    assert table.loc["avg", "spearman"] == pytest.approx(table.spearman[:-1].mean())
    full = {t: len(load_sts(t)) for t in STS_TASKS}  # no truncation by default
    assert table.n_pairs[:-1].to_dict() == full
    assert table.loc["avg", "n_pairs"] == sum(full.values())


def test_evaluate_sts_encodes_all_tasks_in_one_pass(letter_table):
    encoder, _ = letter_table
    assert len(encoder.calls) == 1
    encoded = encoder.calls[0]
    frames = [load_sts(t) for t in STS_TASKS]
    distinct = {s for f in frames for s in [*f.sentence1, *f.sentence2]}
    assert len(encoded) == len(set(encoded)) == len(distinct)


def _cosines(frame) -> np.ndarray:
    a = LetterCounts().encode(frame.sentence1).double().numpy()
    b = LetterCounts().encode(frame.sentence2).double().numpy()
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("task", ["sts12", "sickr"])
def test_evaluate_sts_uses_all_aggregation(letter_table, data_path, task):
    # "all": one Spearman over every pair of the task; "wmean" would average
    # the subsets' correlations, weighted by size (STS12 has five subsets)
    _, table = letter_table
    frame = load_sts(task)
    cos = _cosines(frame)
    expected = 100 * stats.spearmanr(cos, frame.score).statistic
    # cosines tied in float64 may break either way: tolerance 1e-3, not 1e-9
    assert table.loc[task, "spearman"] == pytest.approx(expected, abs=1e-3)
    if task == "sts12":
        meta = pd.read_csv(
            data_path / "sts/meta/sts12.test.meta.tsv",
            sep="\t",
            quoting=csv.QUOTE_NONE,
            dtype=str,
            keep_default_na=False,
        )
        groups = meta.groupby("subset").indices.values()
        wmean = 0.0
        for rows in groups:
            rho = stats.spearmanr(cos[rows], frame.score[rows]).statistic
            wmean += 100 * rho * len(rows) / len(frame)
        assert abs(wmean - expected) > 0.3  # the two really differ (here by 0.6)


class Bigrams:
    """A fake encoder without ties: a fixed random vector per character bigram."""

    table = torch.randn(1024, 16, generator=torch.Generator().manual_seed(0))

    def encode(self, texts, batch_size=64):
        rows = [
            [(ord(a) * 31 + ord(b)) % 1024 for a, b in zip(t, t[1:], strict=False)]
            for t in texts
        ]
        return torch.stack([self.table[r].sum(0) for r in rows]).float()


def _subset_reference(frame, cos, weighted: bool) -> float:
    """SentEval's mean / wmean, a loop over the subsets written out plainly."""
    total, weights = 0.0, 0
    names = list(dict.fromkeys(frame.subset))
    for name in names:
        rows = np.flatnonzero(frame.subset.to_numpy() == name)
        rho = 100 * stats.spearmanr(cos[rows], frame.score.iloc[rows]).statistic
        weight = len(rows) if weighted else 1
        total, weights = total + weight * rho, weights + weight
    return total / weights


@pytest.mark.parametrize("text", ["raw", "senteval"])
def test_evaluate_sts_mean_and_wmean_follow_senteval(text):
    tasks = ["sts12", "sts14", "stsb"]
    for aggregate in ("mean", "wmean"):
        table = evaluate_sts(Bigrams(), tasks, text=text, aggregate=aggregate)
        for task in tasks:
            frame = load_sts(task, text=text, subsets=True)
            a = Bigrams().encode(frame.sentence1).double()
            b = Bigrams().encode(frame.sentence2).double()
            cos = torch.nn.functional.cosine_similarity(a, b).numpy()
            want = _subset_reference(frame, cos, aggregate == "wmean")
            assert table.loc[task, "spearman"] == pytest.approx(want, abs=1e-6)
    every = evaluate_sts(Bigrams(), tasks, text=text)  # "all"
    assert every.loc["stsb", "spearman"] == pytest.approx(table.loc["stsb", "spearman"])
    assert abs(every.loc["sts12", "spearman"] - table.loc["sts12", "spearman"]) > 0.3


def test_load_sts_subsets_are_senteval_names(data_path):
    frame = load_sts("sts12", subsets=True)
    assert frame.subset.value_counts().to_dict() == {
        "MSRpar": 750,
        "MSRvid": 750,
        "surprise.OnWN": 750,
        "SMTeuroparl": 459,
        "surprise.SMTnews": 399,
    }
    assert list(load_sts("sts12").columns) == ["sentence1", "sentence2", "score"]
    assert set(load_sts("sickr", subsets=True, max_rows=5).subset) == {"sickr"}
    with pytest.raises(ValueError, match="subsets of sts13 are unknown"):
        load_sts("sts13", subsets=True, path=data_path / "sts/sts13.test.tsv")


class Recording(LetterCounts):
    def encode(self, texts, batch_size=64, **options):
        self.options = options
        return super().encode(texts, batch_size)


def test_evaluate_sts_truncates_only_when_asked():
    encoder = Recording()
    evaluate_sts(encoder, "stsb", max_rows=20)
    assert encoder.options == {}  # any encode(texts, batch_size) works
    evaluate_sts(encoder, "stsb", max_rows=20, max_length=32)
    assert encoder.options == {"max_length": 32}


def test_multilingual_stsb_is_read_and_scored(data_path):
    german = load_sts("stsb", "test", language="de")
    english = load_sts("stsb", "test", language="en")
    assert len(german) == len(english) == 1379
    assert german.sentence1[0] == "Ein Mädchen frisiert ihr Haar."
    assert german.score.tolist() == english.score.tolist()
    table = evaluate_sts(LetterCounts(), "stsb", language="de")
    want = 100 * stats.spearmanr(_cosines(german), german.score).statistic
    assert table.loc["stsb", "spearman"] == pytest.approx(want, abs=1e-3)
    with pytest.raises(ValueError, match="pass tasks='stsb'"):
        evaluate_sts(LetterCounts(), ["stsb", "sts12"], language="de")
    with pytest.raises(ValueError, match="unknown language"):
        load_sts("stsb", language="xx")
    with pytest.raises(ValueError, match="task='stsb' and text='raw'"):
        load_sts("sickr", language="de")


def test_evaluate_sts_options(tmp_path):
    table = evaluate_sts(LetterCounts(), tasks="stsb", split="dev", max_rows=40)
    assert list(table.index) == ["stsb", "avg"] and table.n_pairs.tolist() == [40, 40]
    senteval = evaluate_sts(LetterCounts(), ["sts13"], text="senteval", max_rows=50)
    assert senteval.loc["sts13", "n_pairs"] == 50


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"tasks": ["stsb", "stsb"]}, ValueError, "distinct"),
        ({"tasks": []}, ValueError, "distinct"),
        ({"tasks": ["sts99"]}, ValueError, "unknown task"),
        ({"tasks": ["sts12"], "split": "dev"}, ValueError, "split for task 'sts12'"),
        ({"tasks": "stsb", "text": "cased"}, ValueError, "unknown text"),
        ({"tasks": "stsb", "max_rows": 0}, ValueError, "max_rows"),
        ({"tasks": "stsb", "batch_size": -1}, ValueError, "batch_size"),
        ({"tasks": "stsb", "aggregate": "median"}, ValueError, "unknown aggregate"),
        ({"tasks": "stsb", "max_length": 0}, ValueError, "max_length"),
    ],
)
def test_evaluate_sts_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        evaluate_sts(LetterCounts(), **kwargs)


# ------------------------------------------------------------------ real model


@pytest.mark.slow
def test_minilm_stsb_matches_sentence_transformers(minilm_path):
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6 moved it; the old path still warns
        from sentence_transformers.sentence_transformer.evaluation import (
            EmbeddingSimilarityEvaluator,
        )
    except ImportError:
        from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator

    from minicse.encoder import SentenceEncoder

    frame = load_sts("stsb", "test")
    ours = evaluate_sts(
        SentenceEncoder.from_pretrained(minilm_path, pooling="mean"), "stsb"
    )
    evaluator = EmbeddingSimilarityEvaluator(
        list(frame.sentence1),
        list(frame.sentence2),
        list(frame.score / 5),
        similarity_fn_names=["cosine"],
        name="stsb",
    )
    theirs = evaluator(SentenceTransformer(str(minilm_path), device="cpu"))
    reference = 100 * theirs["stsb_spearman_cosine"]
    assert ours.loc["stsb", "spearman"] == pytest.approx(reference, abs=0.05)
    assert 80 < reference < 85  # all-MiniLM-L6-v2 on STS-B test: about 82


# ----------------------------------------------------------------------------------
# STS positive pairs (moved here from test_metrics.py with the function)
# ----------------------------------------------------------------------------------


def sts_table(scores):
    n = len(scores)
    return pd.DataFrame(
        {
            "sentence1": [f"first {i}" for i in range(n)],
            "sentence2": [f"second {i}" for i in range(n)],
            "score": scores,
        }
    )


def test_sts_positive_pairs_threshold_is_strict():
    df = sts_table([5.0, 4.0, 4.2, 3.9, 0.0, 4.0001])
    first, second = sts_positive_pairs(df)
    assert first == ["first 0", "first 2", "first 5"]
    assert second == ["second 0", "second 2", "second 5"]
    assert sts_positive_pairs(df, threshold=3.5)[0] == [
        "first 0",
        "first 1",
        "first 2",
        "first 3",
        "first 5",
    ]


def test_sts_positive_pairs_on_stsb_dev_matches_loop(data_path):
    df = pd.read_csv(
        data_path / "sts" / "stsb.dev.tsv",
        sep="\t",
        quoting=csv.QUOTE_NONE,
        dtype=str,
        keep_default_na=False,
    )
    df["score"] = df["score"].astype(float)
    expected = [
        (row.sentence1, row.sentence2) for row in df.itertuples() if row.score > 4.0
    ]
    first, second = sts_positive_pairs(df)
    assert list(zip(first, second, strict=True)) == expected
    assert 0 < len(first) < len(df)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: sts_positive_pairs([("a", "b", 5.0)]), TypeError, "df must be a pan"),
        (
            lambda: sts_positive_pairs(sts_table([5.0]).drop(columns="score")),
            ValueError,
            r"missing column\(s\) \['score'\]",
        ),
        (
            lambda: sts_positive_pairs(sts_table(["high"])),
            ValueError,
            r"df\['score'\] must be numeric",
        ),
        (lambda: sts_positive_pairs(sts_table([5.0]), "4"), TypeError, "threshold"),
        (
            lambda: sts_positive_pairs(sts_table([5.0]), math.nan),
            ValueError,
            "threshold must be finite",
        ),
        (
            lambda: sts_positive_pairs(sts_table([1.0, 3.0])),
            ValueError,
            r"no pair .*score > threshold=4.0 \(max score 3.0\)",
        ),
    ],
)
def test_sts_positive_pairs_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()
