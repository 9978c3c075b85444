"""Tests for minicse.gradcache: the plain step's loss and gradients, less memory."""

from __future__ import annotations

import contextlib

import pytest
import torch

from minicse.batching import make_batch
from minicse.encoder import tiny_encoder
from minicse.gradcache import grad_cache_step
from minicse.losses import info_nce_loss

SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays an instrument on a stage tonight.",
    "The stock market fell today.",
    "Cats sleep.",
    "A child is riding a red bicycle down the hill.",
    "Rain is expected tomorrow in the north of the country.",
]


def simcse_loss(embeddings: torch.Tensor) -> torch.Tensor:
    """Rows are ``[x; x]``: the first half are anchors, the second positives."""
    anchors, positives = embeddings.chunk(2)
    return info_nce_loss(anchors, positives, temperature=0.05)


@pytest.fixture(scope="module")
def encoder():
    """Tiny BERT with the SimCSE train-time MLP head, float64 (dropout 0.1)."""
    return tiny_encoder(mlp="train", hidden_size=32).double()


@pytest.fixture(scope="module")
def views(encoder):
    """The unsup SimCSE batch: the sentences twice, ``(2B, T)`` tensors."""
    batch = encoder.tokenize(SENTENCES)
    return {k: torch.cat([v, v]) for k, v in batch.items()}


def split_batch(batch: dict, size: int) -> list[dict]:
    """The dict's ``(N, T)`` tensors cut into chunks of ``size`` rows, in order."""
    keys, columns = list(batch), [v.split(size) for v in batch.values()]
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def sorted_chunks(encoder, chunk: int):
    """make_batch's GradCache pieces of ``[x; x]``: length-sorted, each padded to
    its own longest row, with the order that restores the view order."""
    rows = [(text,) for text in SENTENCES]
    batch = make_batch(encoder.tokenizer, rows, max_length=128, chunk=chunk)
    return batch.pieces, batch.restore


def grads_of(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None
    }


def plain_step(encoder, chunks) -> tuple[torch.Tensor, dict]:
    """Forward every chunk with a graph, concatenate, loss, one backward."""
    encoder.zero_grad()
    loss = simcse_loss(torch.cat([encoder(**c) for c in chunks]))
    loss.backward()
    return loss.detach(), grads_of(encoder)


def cached_step(encoder, chunks, **kwargs) -> tuple[torch.Tensor, dict]:
    encoder.zero_grad()
    loss = grad_cache_step(lambda c: encoder(**c), chunks, simcse_loss, **kwargs)
    return loss, grads_of(encoder)


def assert_same(result, reference, tol=1e-10):
    (loss, grads), (ref_loss, ref_grads) = result, reference
    torch.testing.assert_close(loss, ref_loss, rtol=tol, atol=tol)
    assert grads.keys() == ref_grads.keys()
    assert "mlp_head.0.weight" in grads  # the train-time head gets gradients too
    for name, ref in ref_grads.items():
        torch.testing.assert_close(grads[name], ref, rtol=tol, atol=tol, msg=name)


@pytest.mark.parametrize("chunk_size", [4, 5])  # 12 rows: divides or not
def test_train_mode_matches_plain_step_with_the_same_dropout(
    encoder, views, chunk_size
):
    encoder.train()
    chunks = split_batch(views, chunk_size)
    torch.manual_seed(0)
    reference = plain_step(encoder, chunks)
    rng_after_plain = torch.get_rng_state()
    torch.manual_seed(0)
    result = cached_step(encoder, chunks)
    assert torch.equal(torch.get_rng_state(), rng_after_plain)  # RNG left as plain
    assert_same(result, reference)


def test_dropout_is_really_on(encoder, views):
    """Without this, the train-mode test above could pass for the wrong reason."""
    encoder.train()
    torch.manual_seed(0)
    with torch.no_grad():
        anchors, positives = encoder(**views).chunk(2)
    assert not torch.allclose(anchors, positives)


@pytest.mark.parametrize("chunk_size", [5, 12])
def test_eval_mode_matches_unchunked_step(encoder, views, chunk_size):
    """Without dropout the chunking is invisible: compare with one big forward."""
    encoder.eval()
    encoder.mlp = "always"  # keep the head in the graph in eval mode
    try:
        reference = plain_step(encoder, [views])
        result = cached_step(encoder, split_batch(views, chunk_size))
    finally:
        encoder.mlp = "train"
    assert_same(result, reference)


def test_sorted_trimmed_chunks_give_the_same_embeddings_with_less_padding(
    encoder, views
):
    encoder.eval()
    with torch.no_grad():
        reference = encoder(**views)
        chunks, restore = sorted_chunks(encoder, 2)  # 4 rows each
        embeddings = torch.cat([encoder(**c) for c in chunks])[restore]
    torch.testing.assert_close(embeddings, reference, rtol=1e-10, atol=1e-10)
    assert sum(c["input_ids"].numel() for c in chunks) < views["input_ids"].numel()


def test_grad_cache_over_sorted_chunks_matches_unchunked_step(encoder, views):
    encoder.eval()
    encoder.mlp = "always"
    try:
        reference = plain_step(encoder, [views])
        chunks, restore = sorted_chunks(encoder, 3)  # 6 rows each
        encoder.zero_grad()
        loss = grad_cache_step(
            lambda c: encoder(**c), chunks, lambda e: simcse_loss(e[restore])
        )
    finally:
        encoder.mlp = "train"
    assert_same((loss, grads_of(encoder)), reference)


def test_bf16_autocast_inside_forward():
    encoder = tiny_encoder(mlp="train", hidden_size=32).train()
    batch = encoder.tokenize(SENTENCES)
    chunks = split_batch({k: torch.cat([v, v]) for k, v in batch.items()}, 5)

    def forward(chunk):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return encoder(**chunk)

    torch.manual_seed(1)
    encoder.zero_grad()
    ref_loss = simcse_loss(torch.cat([forward(c) for c in chunks]))
    ref_loss.backward()
    reference = ref_loss.detach(), grads_of(encoder)
    torch.manual_seed(1)
    encoder.zero_grad()
    result = grad_cache_step(forward, chunks, simcse_loss), grads_of(encoder)
    assert_same(result, reference, tol=1e-5)


def test_no_sync_wraps_all_but_the_last_chunk():
    net, entered = torch.nn.Linear(3, 2), []

    @contextlib.contextmanager
    def no_sync():
        entered.append(True)
        yield

    chunks = list(torch.randn(7, 3).split(2))  # 4 chunks
    grad_cache_step(net, chunks, lambda e: e.sum(), no_sync=no_sync)
    assert len(entered) == 3


class SavedBytes:
    """Peak bytes of tensors the autograd graph holds for backward (params excluded)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.params = {p.untyped_storage().data_ptr() for p in module.parameters()}
        self.live: dict[int, int] = {}
        self.current = self.peak = 0

    def pack(self, tensor: torch.Tensor):
        key = tensor.untyped_storage().data_ptr()
        if key in self.params:
            return tensor
        if self.live.get(key, 0) == 0:
            self.current += tensor.untyped_storage().nbytes()
            self.peak = max(self.peak, self.current)
        self.live[key] = self.live.get(key, 0) + 1
        return _Held(tensor, key, self)

    def release(self, key: int, nbytes: int) -> None:
        self.live[key] -= 1
        if self.live[key] == 0:
            self.current -= nbytes

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, _unpack)


class _Held:
    def __init__(self, tensor, key, meter) -> None:
        self.tensor, self.key, self.meter = tensor, key, meter

    def __del__(self) -> None:
        self.meter.release(self.key, self.tensor.untyped_storage().nbytes())


def _unpack(held):
    return held.tensor if isinstance(held, _Held) else held


def test_activation_memory_scales_with_the_chunk_not_the_batch():
    encoder = tiny_encoder(mlp="train", hidden_size=32).train()
    batch = encoder.tokenize(SENTENCES * 4)  # 24 sentences -> 48 rows
    views = {k: torch.cat([v, v]) for k, v in batch.items()}
    peaks = {}
    for chunk_size in (48, 24, 6):
        meter = SavedBytes(encoder)
        with meter.hooks():
            if chunk_size == 48:
                plain_step(encoder, [views])
            else:
                cached_step(encoder, split_batch(views, chunk_size))
        peaks[chunk_size] = meter.peak
    # (meter.current does not return to 0: the graph of BertModel's unused pooler
    # is never run backward, and a saved *output* makes a cycle through C++.)
    assert peaks[24] < 0.6 * peaks[48]
    assert peaks[6] < 0.2 * peaks[48]


def test_errors():
    net = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    with pytest.raises(TypeError, match="chunks must be a list"):
        grad_cache_step(net, x, lambda e: e.sum())
    with pytest.raises(ValueError, match="chunks is empty"):
        grad_cache_step(net, [], lambda e: e.sum())
    with pytest.raises(TypeError, match="callables"):
        grad_cache_step(net, [x], "loss")
    with pytest.raises(ValueError, match=r"must return \(n, D\)"):
        grad_cache_step(lambda c: net(c).sum(1), [x], lambda e: e.sum())
    with pytest.raises(ValueError, match="scalar"):
        grad_cache_step(net, [x], lambda e: e)
    calls = iter([x[:2], x[:3]])
    with pytest.raises(RuntimeError, match="deterministic"):
        grad_cache_step(lambda c: net(next(calls)), [x], lambda e: e.sum())


# -- under bf16 autocast: bf16 tolerances (8 mantissa bits: 2**-8 ~ 4e-3 a rounding)


def relative_error(grads: dict, reference: dict) -> float:
    """``||g - ref|| / ||ref||`` over all parameters together (scale-free)."""
    diff = sum(((grads[n] - ref) ** 2).sum() for n, ref in reference.items())
    return float(diff.sqrt() / sum((ref**2).sum() for ref in reference.values()).sqrt())


def test_grad_cache_under_bf16_is_close_to_the_plain_step(spread_tiny):
    """Sorted, trimmed chunks (other shapes than one big forward) under bf16."""
    encoder = spread_tiny(mlp="always", hidden_size=32).eval()
    views = {k: torch.cat([v, v]) for k, v in encoder.tokenize(SENTENCES).items()}
    chunks, restore = sorted_chunks(encoder, 2)

    def forward(bf16):
        def run(chunk):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return encoder(**chunk).float()

        return run

    def plain(bf16):
        encoder.zero_grad()
        loss = simcse_loss(forward(bf16)(views))
        loss.backward()
        return loss.detach(), grads_of(encoder)

    (loss32, grads32), (loss16, grads16) = plain(False), plain(True)
    encoder.zero_grad()
    loss = grad_cache_step(forward(True), chunks, lambda e: simcse_loss(e[restore]))
    grads = grads_of(encoder)
    # Measured (AVX2 CPU): loss 6e-4 relative off fp32, GradCache = plain in bf16;
    # gradients 0.025 off fp32 (~6 roundings of 2**-8 through 2 layers and back),
    # GradCache 0.0055 off the plain bf16 step. Bounds: loss 1e-2, gradients 0.1
    # (25 x 2**-8, 4x the worst measured); a dropped or mis-ordered chunk gives >1.
    torch.testing.assert_close(loss16, loss32, rtol=1e-2, atol=0)
    torch.testing.assert_close(loss, loss16, rtol=1e-2, atol=0)
    assert relative_error(grads16, grads32) < 0.1
    assert relative_error(grads, grads32) < 0.1
    assert relative_error(grads, grads16) < 0.1
