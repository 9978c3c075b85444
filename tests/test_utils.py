"""Shared helpers: seeding, device choice, precision, input checks, public API."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import minicse
from minicse.utils import (
    NonFiniteError,
    amp_dtype,
    check_array,
    check_choice,
    check_embeddings,
    check_int,
    check_number,
    check_texts,
    pick_device,
    set_seed,
)


def test_set_seed_makes_torch_numpy_and_random_repeat():
    import random

    set_seed(3)
    first = (torch.rand(3), np.random.rand(3), random.random())
    set_seed(3)
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1]) and first[2] == second[2]


def test_set_seed_rejects_non_int():
    with pytest.raises(TypeError, match="seed must be an int >= 0, got str '0'"):
        set_seed("0")
    with pytest.raises(ValueError, match="seed must be an int >= 0, got int -1"):
        set_seed(-1)
    set_seed(np.int64(3))  # NumPy integers are ints too


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="not a device"):
        pick_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")


def test_amp_dtype_choices():
    assert amp_dtype("cpu", "fp32") is None
    assert amp_dtype("cpu", "bf16") is torch.bfloat16
    assert amp_dtype("cpu", "auto") in (None, torch.bfloat16)
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        amp_dtype("cpu", "half")


@pytest.mark.parametrize(
    "texts, error, message",
    [
        (None, TypeError, "got None"),
        ("one sentence", TypeError, "single string"),
        ([], ValueError, "is empty"),
        (["ok", 3], TypeError, r"texts\[1\] must be a string, got int"),
        (["ok", "   "], ValueError, r"texts\[1\] is empty or whitespace"),
        (42, TypeError, "got int"),
    ],
)
def test_check_texts_errors(texts, error, message):
    with pytest.raises(error, match=message):
        check_texts(texts)


def test_check_texts_accepts_iterables():
    assert check_texts(s for s in ["a", "b"]) == ["a", "b"]


def test_numeric_checks():
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        check_number(0.0, "temperature", "> 0")
    with pytest.raises(TypeError, match="margin must be a number"):
        check_number("1", "margin", ">= 0")
    with pytest.raises(NonFiniteError, match="scores contains NaN"):
        check_array([1.0, float("nan")], "scores", 1)
    assert issubclass(NonFiniteError, ValueError)  # old ``except ValueError`` holds
    with pytest.raises(ValueError, match="unknown pooler 'max'"):
        check_choice("max", "pooler", ("cls", "mean"))


@pytest.mark.parametrize(
    "value, kwargs, error, message",
    [
        (True, {}, TypeError, "n must be an int >= 1, got bool True"),
        (2.0, {}, TypeError, "n must be an int >= 1, got float 2.0"),
        ("3", {}, TypeError, "n must be an int >= 1, got str '3'"),
        (0, {}, ValueError, "n must be an int >= 1, got int 0"),
        (1, {"minimum": 2}, ValueError, "n must be an int >= 2, got int 1"),
        (None, {}, TypeError, "n must be an int >= 1, got NoneType None"),
        (-1, {"optional": True}, ValueError, "n must be an int >= 1 or None, got"),
        (np.int64(0), {}, ValueError, "n must be an int >= 1, got int64"),
        (np.float64(1), {}, TypeError, "n must be an int >= 1, got float64"),
        ("auto", {}, TypeError, "n must be an int >= 1, got str 'auto'"),
        ("AUTO", {"auto": True}, TypeError, "n must be an int >= 1 or 'auto', got str"),
        (0, {"auto": True}, ValueError, "n must be an int >= 1 or 'auto', got int 0"),
    ],
)
def test_check_int_errors(value, kwargs, error, message):
    with pytest.raises(error) as info:
        check_int(value, "n", **kwargs)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    "value, kwargs",
    [(1, {}), (0, {"minimum": 0}), (np.int64(5), {}), (np.uint8(2), {"minimum": 2})]
    + [(None, {"optional": True}), (7, {"optional": True})]
    + [("auto", {"auto": True}), (3, {"auto": True})],
)
def test_check_int_accepts(value, kwargs):
    assert check_int(value, "n", **kwargs) is None


def test_check_embeddings():
    with pytest.raises(ValueError, match=r"shape \(batch, dim\)"):
        check_embeddings(anchors=torch.zeros(3))
    with pytest.raises(ValueError, match="is empty"):
        check_embeddings(anchors=torch.zeros(0, 4))
    with pytest.raises(NonFiniteError, match="NaN or inf"):
        check_embeddings(anchors=torch.tensor([[float("inf"), 0.0]]))
    with pytest.raises(TypeError, match="floating-point"):
        check_embeddings(anchors=torch.zeros(2, 2, dtype=torch.long))


def test_every_public_name_imports():
    for name in minicse.__all__:
        assert getattr(minicse, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        minicse.nope  # noqa: B018


def test_import_is_lazy():
    """``import minicse`` alone loads no submodule and not torch."""
    code = (
        "import sys, minicse; "
        "print('torch' in sys.modules, 'minicse.train' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_cpu_bf16_override(monkeypatch):
    """``MINICSE_CPU_BF16`` forces the fast-bf16 CPU check, in subprocesses too."""
    monkeypatch.setenv("MINICSE_CPU_BF16", "1")
    assert amp_dtype("cpu", "auto") is torch.bfloat16
    assert amp_dtype("cpu", "fp32") is None  # an explicit precision still wins
    code = "from minicse.utils import amp_dtype; print(amp_dtype('cpu'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "torch.bfloat16", out.stderr
    monkeypatch.setenv("MINICSE_CPU_BF16", "0")
    assert amp_dtype("cpu", "auto") is None
    assert amp_dtype("cpu", "bf16") is torch.bfloat16
    detected = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    expected = torch.bfloat16 if detected else None
    for unset in ("", " "):  # empty is unset: ask oneDNN
        monkeypatch.setenv("MINICSE_CPU_BF16", unset)
        assert amp_dtype("cpu", "auto") is expected
    monkeypatch.delenv("MINICSE_CPU_BF16")
    assert amp_dtype("cpu", "auto") is expected
    monkeypatch.setenv("MINICSE_CPU_BF16", "yes")
    with pytest.raises(ValueError, match="unknown MINICSE_CPU_BF16 'yes'.*'1', '0'"):
        amp_dtype("cpu", "auto")


@pytest.mark.parametrize(
    ("capability", "expected"),
    [
        ((7, 5), torch.float16),
        ((7, 0), torch.float16),
        ((8, 0), torch.bfloat16),
        ((9, 0), torch.bfloat16),
    ],
)
def test_auto_precision_on_gpus_needs_native_bf16(monkeypatch, capability, expected):
    """A T4 (7.5) answers is_bf16_supported() True through emulation; auto must
    still pick fp16 (with the scaler) there, bf16 only from Ampere (8.0) on."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    assert amp_dtype("cuda", "auto") is expected
    assert amp_dtype("cuda", "fp32") is None


def test_cpu_threads_restores_the_count_even_after_an_error():
    from minicse import cpu_threads

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="inside"):
        with cpu_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="count"):
        with cpu_threads(0):
            pass


def test_training_modules_print_no_widget_warning_in_a_notebook():
    # In a Jupyter kernel without ipywidgets, importing tqdm.auto warns "IProgress
    # not found" into the first cell that imports minicse's training code; the
    # text bar it falls back to is what the book wants (a widget needs a CDN).
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    code = "import minicse.train, minicse.encoder\nprint('imported')"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert "imported" in text and "IProgress" not in text, text
