"""Sphinx extension (named in ``_config.yml``): one jupyter-cache per kind of run.

jupyter-cache keys a notebook on its code alone, and Sphinx re-reads a page only when
its source or the configuration changed. A build in one preset would otherwise show the
outputs another preset computed. This extension puts the cache in
``<cache>/<preset>-<sizes>-<device>-<precision>-<code>`` (``_build/.jupyter_cache/``
by default), e.g. ``smoke-smoke-cpu-bf16-0123456789ab``: ``MINICSE_PRESET``,
``MINICSE_SIZES``, the device the chapters run on, the precision ``precision="auto"``
takes there (``MINICSE_CPU_BF16`` included), as minicse itself resolves them, and a
digest of minicse's source (outputs belong to the code that computed them, as
``cached_train``'s models do). The cache path is a configuration value, so a build of
another kind re-reads (and re-executes, or takes from that kind's cache) every page; a
second build of the same kind executes nothing.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sphinx.util import logging

LOGGER = logging.getLogger(__name__)


def code_digest(package: Path) -> str:
    """The first 12 hex digits of a SHA-256 over the package's modules."""
    digest = hashlib.sha256()
    for module in sorted(Path(package).rglob("*.py")):
        name = module.relative_to(package).as_posix()
        digest.update(name.encode() + b"\0" + module.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def run_kind() -> str:
    """``<preset>-<sizes>-<device>-<precision>-<code>``, as the chapters see them."""
    try:
        import torch

        import minicse
        from minicse.config import get_preset
        from minicse.utils import amp_dtype
    except ImportError:  # no minicse to ask: the variables themselves
        names = ("MINICSE_PRESET", "MINICSE_SIZES", "MINICSE_CPU_BF16")
        return "-".join(os.environ.get(name, "").strip() or "unset" for name in names)
    preset = get_preset()
    sizes = getattr(preset, "sizes", "") or preset.name
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[
        amp_dtype(device)
    ]
    code = code_digest(Path(minicse.__file__).parent)
    return f"{preset.name}-{sizes}-{device}-{precision}-{code}"


def _cache_per_run_kind(app, config) -> None:
    given = config.nb_execution_cache_path
    base = (
        Path(app.confdir, given)
        if given
        else Path(app.outdir).parent / ".jupyter_cache"
    )
    kind = run_kind()
    config.nb_execution_cache_path = str((base / kind).resolve())
    LOGGER.info(
        f"minicse run kind {kind}: outputs cached in {config.nb_execution_cache_path}"
    )


def quiet_kernels() -> None:
    """What the chapters' kernels print is for a page, not a terminal: a training bar
    redraws at its start, at its loss records (``set_postfix``) and at its end, not
    every half second (``TQDM_MININTERVAL``: each redraw would be a line of the page),
    and tqdm's "IProgress not found" (no ipywidgets in the build) is not printed."""
    os.environ.setdefault("TQDM_MININTERVAL", "3600")
    quiet = "ignore:IProgress not found"  # a prefix of the message, as -W takes it
    given = os.environ.get("PYTHONWARNINGS", "").strip()
    if quiet not in given:
        os.environ["PYTHONWARNINGS"] = f"{given},{quiet}" if given else quiet


def setup(app):
    app.setup_extension("myst_nb")  # its nb_execution_cache_path must exist first
    quiet_kernels()  # before any kernel starts: kernels inherit the environment
    app.connect("config-inited", _cache_per_run_kind)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
