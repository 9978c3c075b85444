"""Plots the book draws again and again: loss curves, similarity maps, embeddings.

Every function takes an optional matplotlib ``Axes``, draws on it (or on a new figure)
and returns it; none calls ``plt.show()``. matplotlib is imported inside the functions,
so ``import minicse`` works without it (it comes with the ``book`` and ``test`` extras).
See chapters 1, 3 and 9.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .utils import check_choice

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes

__all__ = [
    "plot_history",
    "plot_similarity_matrix",
    "plot_alignment_uniformity",
    "plot_embeddings_2d",
]


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (5.0, 3.5)) -> Axes:
    """``ax`` itself, or the axes of a new figure."""
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    _, new_ax = plt.subplots(figsize=figsize)
    return new_ax


def _records(data: Any, name: str) -> list[dict[str, Any]]:
    """A list of dicts from a list of dicts or a pandas DataFrame."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a DataFrame
        data = data.to_dict("records")
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
        raise TypeError(
            f"{name} must be a list of dicts or a pandas DataFrame, "
            f"got {type(data).__name__}"
        )
    if len(data) == 0:
        raise ValueError(f"{name} is empty: nothing to plot")
    for i, row in enumerate(data):
        if not isinstance(row, Mapping):
            raise TypeError(f"{name}[{i}] must be a dict, got {type(row).__name__}")
    return [dict(row) for row in data]


def _present(value: Any) -> bool:
    """True for a real number (not None, not NaN)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of the rows that have ``key``."""
    pairs = [(float(r["step"]), float(r[key])) for r in rows if _present(r.get(key))]
    return [s for s, _ in pairs], [v for _, v in pairs]


def plot_history(history: Any, ax: Axes | None = None) -> Axes:
    """Training loss against step, and the dev score on a second y-axis if logged.

    Args:
        history: the trainer's log, ``model.history``: a list of dicts (or a DataFrame)
            with ``step`` and ``loss``, optionally ``lr`` and ``dev`` (STS-B dev
            Spearman x100, logged every ``eval_steps``). Rows may carry only some keys.
        ax: axes to draw on; a new figure when ``None``.

    Returns:
        The axes with the loss line. The dev line, if any, is on ``ax.twinx()``.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> ax = plot_history([{"step": 0, "loss": 2.0}, {"step": 1, "loss": 1.5}])
        >>> len(ax.get_lines())
        1
    """
    rows = _records(history, "history")
    if any("step" not in r for r in rows):
        raise ValueError("every row of history needs a 'step' key, e.g. {'step': 0}")
    steps, losses = _series(rows, "loss")
    dev_steps, devs = _series(rows, "dev")
    if not steps and not dev_steps:
        raise ValueError("history has no 'loss' or 'dev' values to plot")
    ax = _new_axes(ax)
    if steps:
        ax.plot(steps, losses, color="C0", label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if dev_steps:
        dev_ax = ax.twinx()
        dev_ax.plot(dev_steps, devs, "o-", color="C1", label="dev Spearman x100")
        dev_ax.set_ylabel("dev Spearman x100")
        ax.figure.legend(
            loc="upper right",
            bbox_to_anchor=(1, 1),
            bbox_transform=ax.transAxes,
            fontsize="small",
        )
    return ax


def _as_matrix(values: Any, name: str) -> np.ndarray:
    """A finite 2-D float array from a tensor, array or nested list."""
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a 2-D array of numbers: {err}") from None
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D matrix, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return array


def plot_similarity_matrix(
    sim: Any, labels: Sequence[str] | None = None, ax: Axes | None = None
) -> Axes:
    """Heat map of a similarity matrix, with the values written in when it is small.

    Args:
        sim: ``(n, m)`` tensor or array, e.g. ``cosine_similarity_matrix(x, y)``.
        labels: tick labels; ``n`` of them for a square matrix (used on both axes),
            or a pair ``(row_labels, col_labels)``. Long labels are shortened.
        ax: axes to draw on; a new figure when ``None``.

    Returns:
        The axes (the image is ``ax.images[0]``, with a colour bar beside it).

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> ax = plot_similarity_matrix(torch.eye(3), labels=["a", "b", "c"])
        >>> [t.get_text() for t in ax.get_xticklabels()]
        ['a', 'b', 'c']
    """
    matrix = _as_matrix(sim, "sim")
    n, m = matrix.shape
    rows, cols = _split_labels(labels, n, m)
    ax = _new_axes(ax, figsize=(1.2 + 0.5 * m, 0.9 + 0.45 * n) if m <= 16 else (6, 5))
    image = ax.imshow(matrix, cmap="viridis", aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if rows is not None:
        ax.set_yticks(range(n), [_short(t) for t in rows])
        ax.set_xticks(range(m), [_short(t) for t in cols], rotation=45, ha="right")
    if n * m <= 144:  # write the numbers when they can be read
        middle = (matrix.max() + matrix.min()) / 2
        for i in range(n):
            for j in range(m):
                color = "black" if matrix[i, j] > middle else "white"
                ax.text(
                    j,
                    i,
                    f"{matrix[i, j]:.2f}",
                    ha="center",
                    va="center",
                    color=color,
                    fontsize="small",
                )
    return ax


def _split_labels(labels: Any, n: int, m: int) -> tuple[list | None, list | None]:
    """(row_labels, col_labels) from ``labels``, checked against the shape."""
    if labels is None:
        return None, None
    pair = isinstance(labels, tuple) and len(labels) == 2
    if pair and not isinstance(labels[0], str):
        rows, cols = list(labels[0]), list(labels[1])
    else:
        rows = cols = list(labels)
    if len(rows) != n or len(cols) != m:
        raise ValueError(
            f"labels must give {n} row and {m} column labels for a {n}x{m} matrix, "
            f"got {len(rows)} and {len(cols)}"
        )
    return rows, cols


def _short(text: Any, limit: int = 30) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot_alignment_uniformity(points: Any, ax: Axes | None = None) -> Axes:
    """Wang and Isola's map: uniformity on x, alignment on y; lower-left is better.

    Args:
        points: a list of dicts (or a DataFrame) with ``alignment`` and ``uniformity``
            (from :func:`minicse.alignment` / :func:`minicse.uniformity`), optionally
            ``label`` (written beside the point) and ``step``. With ``step`` in every
            row the points are joined in step order, as a training trajectory (SimCSE,
            Figure 2).
        ax: axes to draw on; a new figure when ``None``.

    Returns:
        The axes.

    References:
        Wang and Isola, 2020 (ICML), Figure 2.
        Gao et al., 2021, arXiv:2104.08821, Figure 2.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> ax = plot_alignment_uniformity([{"alignment": 0.2, "uniformity": -2.0}])
        >>> ax.get_xlabel()
        'uniformity (lower is better)'
    """
    rows = _records(points, "points")
    for i, row in enumerate(rows):
        for key in ("alignment", "uniformity"):
            if not _present(row.get(key)):
                raise ValueError(f"points[{i}] needs a number under '{key}', got {row}")
    if all("step" in r for r in rows):
        rows = sorted(rows, key=lambda r: r["step"])
    xs = [float(r["uniformity"]) for r in rows]
    ys = [float(r["alignment"]) for r in rows]
    ax = _new_axes(ax, figsize=(4.5, 4.0))
    if len(rows) > 1 and all("step" in r for r in rows):
        ax.plot(xs, ys, "-", color="0.6", zorder=1)
    ax.scatter(xs, ys, c=range(len(rows)), cmap="viridis", zorder=2)
    for x, y, row in zip(xs, ys, rows, strict=True):
        if "label" in row:
            ax.annotate(
                str(row["label"]),
                (x, y),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize="small",
            )
    ax.set_xlabel("uniformity (lower is better)")
    ax.set_ylabel("alignment (lower is better)")
    return ax


def _project_2d(array: np.ndarray, method: str) -> np.ndarray:
    """``(n, d)`` -> ``(n, 2)`` by PCA (SVD of the centred data), t-SNE or nothing."""
    if method == "none":
        if array.shape[1] != 2:
            raise ValueError(f"method='none' needs 2-D points, got {array.shape[1]}-D")
        return array
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = max(1.0, min(30.0, (len(array) - 1) / 3))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=0).fit_transform(
            array
        )
    centred = array - array.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)  # rows of vt: directions
    projected = centred @ vt[:2].T  # (n, <=2)
    if projected.shape[1] < 2:  # a single input dimension: pad with zeros
        projected = np.pad(projected, ((0, 0), (0, 2 - projected.shape[1])))
    return projected


def plot_embeddings_2d(
    embeddings: Any,
    labels: Sequence[Any] | None = None,
    ax: Axes | None = None,
    method: str = "pca",
) -> Axes:
    """Scatter plot of embeddings projected to two dimensions, coloured by label.

    Args:
        embeddings: ``(n, d)`` tensor or array.
        labels: ``n`` class labels (ints or strings): one colour and one legend entry
            per class. ``None`` draws every point in one colour.
        ax: axes to draw on; a new figure when ``None``.
        method: ``"pca"`` (the top two principal components), ``"tsne"`` (needs
            scikit-learn) or ``"none"`` (the points are already 2-D).

    Returns:
        The axes: one ``PathCollection`` per class in ``ax.collections``.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> ax = plot_embeddings_2d(torch.randn(10, 5), labels=[0, 1] * 5)
        >>> len(ax.collections)
        2
    """
    check_choice(method, "method", ("pca", "tsne", "none"))
    array = _as_matrix(embeddings, "embeddings")
    if labels is not None and len(labels) != len(array):
        raise ValueError(
            f"labels has {len(labels)} entries but embeddings has {len(array)} rows"
        )
    xy = _project_2d(array, method)
    ax = _new_axes(ax, figsize=(4.5, 4.0))
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=18)
    else:
        classes = list(dict.fromkeys(labels))  # first-seen order
        for k, cls in enumerate(classes):
            mask = np.array([lab == cls for lab in labels])
            ax.scatter(
                xy[mask, 0], xy[mask, 1], s=18, color=f"C{k % 10}", label=str(cls)
            )
        ax.legend(fontsize="small", loc="best")
    names = {"pca": "PC", "tsne": "t-SNE ", "none": "dim "}[method]
    ax.set_xlabel(f"{names}1")
    ax.set_ylabel(f"{names}2")
    return ax
