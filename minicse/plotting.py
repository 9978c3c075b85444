"""Plots the book draws again and again: loss curves, similarity maps, embeddings.

Each draws on ``ax`` (a new figure's if ``None``) and returns it, without
``plt.show()``. matplotlib is imported lazily: ``import minicse`` works without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .utils import check_array, check_choice

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (5.0, 3.5)) -> Axes:
    """``ax``, or the axes of a new figure of ``figsize``."""
    import matplotlib.pyplot as plt

    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def _records(data: Any, name: str, need: Sequence[str]) -> list[dict[str, Any]]:
    """A non-empty list of dicts (or a DataFrame's rows), each with numbers ``need``."""
    if isinstance(data, pd.DataFrame):
        data = data.to_dict("records")
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
        got = f"{data!r:.30}"
        raise TypeError(f"{name} must be a list of dicts or DataFrame, got {got}")
    if len(data) == 0:
        raise ValueError(f"{name} is empty: nothing to plot")
    for i, row in enumerate(data):
        if not isinstance(row, Mapping):
            raise TypeError(f"{name}[{i}] must be a dict, got {type(row).__name__}")
        for key in need:
            if pd.isna(row.get(key)):  # missing, None or NaN
                raise ValueError(f"{name}[{i}] needs a number under '{key}', got {row}")
    return [dict(row) for row in data]


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of the rows that have ``key``."""
    pairs = [(float(r["step"]), float(r[key])) for r in rows if pd.notna(r.get(key))]
    return [s for s, _ in pairs], [v for _, v in pairs]


def plot_history(history: Any, ax: Axes | None = None) -> Axes:
    """Training loss per step, and the dev score on a twin axis. See chapter 6.

    ``history`` is ``model.history``: dicts (or a DataFrame) with ``step``, ``loss``
    and ``dev``. Returns the axes of the loss line; the dev line is on a twin.
    """
    rows = _records(history, "history", need=["step"])
    (steps, losses), (dev_steps, devs) = _series(rows, "loss"), _series(rows, "dev")
    if not steps and not dev_steps:
        raise ValueError("history has no 'loss' or 'dev' values to plot")
    ax = _new_axes(ax)
    if steps:
        ax.plot(steps, losses, color="C0", label="training loss")
    ax.set(xlabel="step", ylabel="loss")
    if dev_steps:
        dev_ax = ax.twinx()
        dev_ax.plot(dev_steps, devs, "o-", color="C1", label="dev Spearman x100")
        dev_ax.set_ylabel("dev Spearman x100")
        where = {"bbox_to_anchor": (1, 1), "bbox_transform": ax.transAxes}
        ax.figure.legend(loc="upper right", fontsize="small", **where)
    return ax


def plot_similarity_matrix(
    sim: Any, labels: Sequence[str] | None = None, ax: Axes | None = None
) -> Axes:
    """Heat map of a similarity matrix, values written in when small. See chapter 1.

    ``sim`` is an ``(n, m)`` tensor or array; ``labels`` are ``n`` labels of a
    square matrix, or ``(row_labels, col_labels)``. The image is ``ax.images[0]``.
    """
    matrix = check_array(sim, "sim", 2)
    n, m = matrix.shape
    if labels is not None:  # one list (square), or a pair (rows, columns)
        pair = isinstance(labels, tuple) and len(labels) == 2
        rows, cols = labels if pair and not isinstance(labels[0], str) else [labels] * 2
        if len(rows) != n or len(cols) != m:
            got = f"got {len(rows)} and {len(cols)}"
            raise ValueError(f"labels must give {n} row and {m} column labels, {got}")
        short = [t if len(t) <= 30 else t[:29] + "…" for t in map(str, [*rows, *cols])]
    ax = _new_axes(ax, figsize=(1.2 + 0.5 * m, 0.9 + 0.45 * n) if m <= 16 else (6, 5))
    image = ax.imshow(matrix, cmap="viridis", aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if labels is not None:
        ax.set_yticks(range(n), short[:n])
        ax.set_xticks(range(m), short[n:], rotation=45, ha="right")
    if n * m <= 144:  # write the numbers when they can be read
        middle = (matrix.max() + matrix.min()) / 2
        for (i, j), value in np.ndenumerate(matrix):
            ink = "black" if value > middle else "white"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", size="small", c=ink)
    return ax


def plot_alignment_uniformity(points: Any, ax: Axes | None = None) -> Axes:
    """Wang and Isola's map: uniformity on x, alignment on y. See chapter 9.

    ``points`` are dicts (or a DataFrame) with ``alignment``, ``uniformity`` and
    optionally ``label``; with a ``step`` in every row they are joined in step
    order. Reference: Wang & Isola, 2020, arXiv:2005.10242; SimCSE's Figure 2.
    """
    rows = _records(points, "points", need=["alignment", "uniformity"])
    trajectory = all("step" in r for r in rows)
    rows = sorted(rows, key=lambda r: r["step"]) if trajectory else rows
    xs, ys = ([float(r[k]) for r in rows] for k in ("uniformity", "alignment"))
    ax = _new_axes(ax, figsize=(4.5, 4.0))
    if trajectory and len(rows) > 1:
        ax.plot(xs, ys, "-", color="0.6", zorder=1)
    ax.scatter(xs, ys, c=range(len(rows)), cmap="viridis", zorder=2)
    for x, y, row in zip(xs, ys, rows, strict=True):
        if "label" in row:
            label = str(row["label"])
            ax.annotate(label, (x, y), (4, 4), textcoords="offset points", size="small")
    ax.set(xlabel="uniformity (lower is better)", ylabel="alignment (lower is better)")
    return ax


def plot_embeddings_2d(
    embeddings: Any,
    labels: Sequence | None = None,
    ax: Axes | None = None,
    method: str = "pca",
) -> Axes:
    """``(n, d)`` embeddings projected to 2-D, one colour per label. See chapter 2.

    ``labels``: ``n`` class labels (one colour and legend entry each) or ``None``;
    ``method``: ``"pca"``, ``"tsne"`` (needs scikit-learn) or ``"none"`` (2-D input).
    Each class is one ``PathCollection`` in ``ax.collections``.
    """
    check_choice(method, "method", ("pca", "tsne", "none"))
    array = check_array(embeddings, "embeddings", 2)
    if labels is not None and len(labels) != len(array):
        raise ValueError(f"labels has {len(labels)} entries, embeddings {len(array)}")
    if method == "none" and array.shape[1] != 2:
        raise ValueError(f"method='none' needs 2-D points, got {array.shape[1]}-D")
    xy = array
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = max(1.0, min(30.0, (len(array) - 1) / 3))
        tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=0)
        xy = tsne.fit_transform(array)
    elif method == "pca":  # the SVD of the centred data: rows of vt are directions
        centred = array - array.mean(axis=0, keepdims=True)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T  # (n, <=2)
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))  # 1-D input: pad
    ax = _new_axes(ax, figsize=(4.5, 4.0))
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=18)
    else:
        for k, cls in enumerate(dict.fromkeys(labels)):  # classes in first-seen order
            mask = np.array([label == cls for label in labels])
            ax.scatter(*xy[mask].T, s=18, color=f"C{k % 10}", label=str(cls))
        ax.legend(fontsize="small", loc="best")
    axis = {"pca": "PC", "tsne": "t-SNE ", "none": "dim "}[method]
    ax.set(xlabel=f"{axis}1", ylabel=f"{axis}2")
    return ax
