"""Plotting: the right artists are drawn, Axes go in and out, bad input is refused."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from minicse.plotting import (  # noqa: E402
    plot_alignment_uniformity,
    plot_embeddings_2d,
    plot_history,
    plot_similarity_matrix,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------- plot_history

HISTORY = [
    {"step": 0, "loss": 3.0, "lr": 1e-5},
    {"step": 1, "loss": 2.5, "lr": 2e-5},
    {"step": 2, "loss": 2.0, "lr": 3e-5, "dev": 60.0},
    {"step": 3, "loss": 1.5, "lr": 3e-5},
    {"step": 4, "loss": 1.2, "lr": 2e-5, "dev": 70.0},
]


def test_history_draws_loss_on_given_axes():
    fig, ax = plt.subplots()
    out = plot_history(HISTORY[:2], ax=ax)
    assert out is ax
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [0, 1])
    np.testing.assert_allclose(line.get_ydata(), [3.0, 2.5])
    assert len(fig.axes) == 1  # no dev values -> no twin axis


def test_history_dev_goes_on_twin_axis():
    ax = plot_history(HISTORY)
    assert len(ax.get_lines()) == 1
    assert len(ax.figure.axes) == 2
    (dev_line,) = ax.figure.axes[1].get_lines()
    np.testing.assert_allclose(dev_line.get_xdata(), [2, 4])
    np.testing.assert_allclose(dev_line.get_ydata(), [60.0, 70.0])


def test_history_accepts_dataframe_with_nan_gaps():
    ax = plot_history(pd.DataFrame(HISTORY))  # missing "dev" becomes NaN
    (dev_line,) = ax.figure.axes[1].get_lines()
    assert len(dev_line.get_xdata()) == 2
    assert len(ax.get_lines()[0].get_xdata()) == 5


def test_history_dev_only_rows():
    ax = plot_history([{"step": 5, "dev": 80.0}, {"step": 10, "dev": 81.0}])
    assert len(ax.get_lines()) == 0
    assert len(ax.figure.axes[1].get_lines()) == 1


@pytest.mark.parametrize(
    "history, error, match",
    [
        ([], ValueError, "empty"),
        ({"step": 0, "loss": 1.0}, TypeError, "list of dicts"),
        ("loss", TypeError, "list of dicts"),
        ([1.0, 2.0], TypeError, r"history\[0\] must be a dict"),
        ([{"loss": 1.0}], ValueError, "'step'"),
        ([{"step": 0, "lr": 1e-5}], ValueError, "no 'loss' or 'dev'"),
    ],
)
def test_history_bad_input(history, error, match):
    with pytest.raises(error, match=match):
        plot_history(history)


# ---------------------------------------------------- plot_similarity_matrix


def test_similarity_matrix_image_labels_and_numbers():
    sim = torch.tensor([[1.0, 0.2, -0.1], [0.2, 1.0, 0.5], [-0.1, 0.5, 1.0]])
    fig, ax = plt.subplots()
    out = plot_similarity_matrix(sim, labels=["a", "b", "c"], ax=ax)
    assert out is ax
    assert len(ax.images) == 1
    np.testing.assert_allclose(ax.images[0].get_array(), sim.numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert len(ax.texts) == 9  # every cell's value written in
    assert ax.texts[1].get_text() == "0.20"
    assert len(fig.axes) == 2  # the colour bar


def test_similarity_matrix_rectangular_with_row_and_col_labels():
    ax = plot_similarity_matrix(
        np.zeros((2, 3)), labels=(["r1", "r2"], ["x", "y", "z"])
    )
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["r1", "r2"]


def test_similarity_matrix_large_has_no_numbers_and_short_labels():
    labels = [f"a rather long sentence number {i} that goes on" for i in range(20)]
    ax = plot_similarity_matrix(torch.rand(20, 20), labels=labels)
    assert len(ax.texts) == 0
    assert all(len(t.get_text()) <= 30 for t in ax.get_xticklabels())


@pytest.mark.parametrize(
    "sim, labels, error, match",
    [
        (torch.zeros(3), None, ValueError, "2-D"),
        (np.zeros((0, 0)), None, ValueError, "non-empty"),
        (torch.tensor([[1.0, float("nan")]]), None, ValueError, "NaN"),
        ([["a", "b"]], None, TypeError, "numbers"),
        (torch.eye(3), ["a", "b"], ValueError, "3 row and 3 column labels"),
    ],
)
def test_similarity_matrix_bad_input(sim, labels, error, match):
    with pytest.raises(error, match=match):
        plot_similarity_matrix(sim, labels=labels)


# ---------------------------------------------------- alignment / uniformity


def test_alignment_uniformity_points_and_labels():
    points = [
        {"alignment": 0.3, "uniformity": -1.0, "label": "BERT"},
        {"alignment": 0.2, "uniformity": -2.5, "label": "SimCSE"},
    ]
    ax = plot_alignment_uniformity(points)
    (scatter,) = ax.collections
    np.testing.assert_allclose(scatter.get_offsets(), [[-1.0, 0.3], [-2.5, 0.2]])
    assert [t.get_text() for t in ax.texts] == ["BERT", "SimCSE"]
    assert len(ax.get_lines()) == 0  # no steps -> no trajectory
    assert "uniformity" in ax.get_xlabel() and "alignment" in ax.get_ylabel()


def test_alignment_uniformity_trajectory_in_step_order():
    points = pd.DataFrame(
        {"step": [20, 0, 10], "alignment": [0.1, 0.3, 0.2], "uniformity": [-3, -1, -2]}
    )
    ax = plot_alignment_uniformity(points)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [-1, -2, -3])


@pytest.mark.parametrize(
    "points, error, match",
    [
        ([], ValueError, "empty"),
        ([{"alignment": 0.1}], ValueError, "'uniformity'"),
        ([{"alignment": None, "uniformity": 1.0}], ValueError, "'alignment'"),
        (3.0, TypeError, "list of dicts"),
    ],
)
def test_alignment_uniformity_bad_input(points, error, match):
    with pytest.raises(error, match=match):
        plot_alignment_uniformity(points)


# ---------------------------------------------------- plot_embeddings_2d


def test_embeddings_2d_one_collection_per_class_with_legend():
    torch.manual_seed(0)
    ax = plot_embeddings_2d(torch.randn(12, 8), labels=["x", "y", "z"] * 4)
    assert len(ax.collections) == 3
    assert [len(c.get_offsets()) for c in ax.collections] == [4, 4, 4]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["x", "y", "z"]


def test_embeddings_2d_pca_keeps_the_main_direction():
    # points spread along one direction in 5-D: PC1 carries all the variance
    t = torch.linspace(-1, 1, 9)[:, None]
    direction = torch.tensor([[1.0, 2.0, 0.0, -1.0, 0.5]])
    ax = plot_embeddings_2d(t * direction)
    xy = ax.collections[0].get_offsets()
    assert np.ptp(xy[:, 0]) > 1.0 and np.allclose(xy[:, 1], 0, atol=1e-6)


def test_embeddings_2d_none_plots_raw_points():
    points = np.array([[0.0, 1.0], [2.0, 3.0]])
    fig, ax = plt.subplots()
    assert plot_embeddings_2d(points, ax=ax, method="none") is ax
    np.testing.assert_allclose(ax.collections[0].get_offsets(), points)


def test_embeddings_2d_tsne_calls_sklearn(monkeypatch):
    # a stand-in for sklearn's TSNE (the real one takes ~15 s to import and fit here)
    import sys
    import types

    calls = {}

    class FakeTSNE:
        def __init__(self, n_components, perplexity, init, random_state):
            calls.update(n=n_components, perplexity=perplexity)

        def fit_transform(self, array):
            return array[:, :2] * 10

    fake = types.ModuleType("sklearn.manifold")
    fake.TSNE = FakeTSNE
    monkeypatch.setitem(sys.modules, "sklearn.manifold", fake)
    points = torch.randn(12, 4)
    ax = plot_embeddings_2d(points, method="tsne")
    assert calls["n"] == 2 and 1 <= calls["perplexity"] < 12
    np.testing.assert_allclose(
        ax.collections[0].get_offsets(), points[:, :2].numpy() * 10, rtol=1e-6
    )
    assert ax.get_xlabel() == "t-SNE 1"


@pytest.mark.parametrize(
    "embeddings, kwargs, error, match",
    [
        (torch.randn(4, 3), {"labels": [0, 1]}, ValueError, "labels has 2"),
        (torch.randn(4, 3), {"method": "umap"}, ValueError, "method"),
        (torch.randn(4, 3), {"method": "none"}, ValueError, "2-D points"),
        (torch.randn(4), {}, ValueError, "2-D"),
    ],
)
def test_embeddings_2d_bad_input(embeddings, kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_embeddings_2d(embeddings, **kwargs)
