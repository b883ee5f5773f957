"""NorCal and per-pixel logit adjustment (disalign_mm.core.adjusted) against
independent computations: NorCal as the official code writes it (scores
``exp(z)``, foreground divided by ``N_c ** gamma``, background kept,
renormalised), logit adjustment per pixel as the per-sample formula at
every pixel."""
import numpy as np
import pytest
import torch

from disalign_mm.core import (LogitAdjustedConv2d, NorCalCosineLinear, NorCalLinear,
                              class_log_counts, logit_adjust, norcal_adjust, posthoc_copy)


def norcal_reference(z: np.ndarray, counts, gamma: float) -> np.ndarray:
    """tydpan/NorCal projects/NorCal/norcal/roi_heads.py, METHOD 'gamma',
    WITH 'exps', RENORM True, in numpy float64."""
    probs = np.exp(z.astype(np.float64))
    probs[:, :-1] *= 1.0 / np.asarray(counts, dtype=np.float64) ** gamma
    return probs / probs.sum(axis=1, keepdims=True)


def test_norcal_scores_are_the_official_formula():
    rng = np.random.RandomState(0)
    z = rng.randn(6, 5).astype(np.float32) * 3  # 4 foreground classes + background
    counts = [1000, 200, 10, 1]
    for gamma in (0.0, 0.5, 1.0, 1.7):
        got = torch.softmax(norcal_adjust(torch.from_numpy(z), counts, gamma).double(), 1)
        np.testing.assert_allclose(got.numpy(), norcal_reference(z, counts, gamma), rtol=1e-6,
                                   atol=1e-12)


def test_norcal_exact_logits_and_background():
    z = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    out = norcal_adjust(z, [100, 10], 0.5)
    want = torch.tensor([[1.0 - 0.5 * np.log(100), 2.0 - 0.5 * np.log(10), 3.0],
                         [0.0 - 0.5 * np.log(100), -1.0 - 0.5 * np.log(10), 5.0]],
                        dtype=torch.float32)
    torch.testing.assert_close(out, want)
    # the background logit is untouched, bit for bit, for every gamma
    for g in (0.3, 1.0, 2.0):
        assert torch.equal(norcal_adjust(z, [100, 10], g)[:, -1], z[:, -1])
    # counts, not frequencies: scaling the counts moves foreground vs background
    p1 = torch.softmax(norcal_adjust(z, [100, 10], 1.0), 1)
    p2 = torch.softmax(norcal_adjust(z, [1000, 100], 1.0), 1)
    assert (p2[:, -1] > p1[:, -1]).all()
    # ... but not the foreground classes among themselves
    torch.testing.assert_close(p1[:, 0] / p1[:, 1], p2[:, 0] / p2[:, 1])
    # gamma 0 is the identity
    assert torch.equal(norcal_adjust(z, [100, 10], 0.0), z)


def test_norcal_without_background_and_dense_maps():
    z = torch.randn(2, 3, 4, 4)
    counts = [5, 50, 500]
    out = norcal_adjust(z, counts, 1.0, background_last=False)
    want = z - torch.log(torch.tensor(counts, dtype=torch.float32)).reshape(1, 3, 1, 1)
    torch.testing.assert_close(out, want)


def test_class_log_counts_and_bad_inputs():
    torch.testing.assert_close(class_log_counts([1, 10, 100]),
                               torch.tensor([0.0, np.log(10), np.log(100)], dtype=torch.float64))
    with pytest.raises(ValueError, match='2 class counts but 3 classes'):
        norcal_adjust(torch.zeros(1, 4), [1, 2], 1.0)
    with pytest.raises(ValueError, match=r'classes \[1\] have a count that is zero'):
        norcal_adjust(torch.zeros(1, 3), [1, 0], 1.0)
    with pytest.raises(ValueError, match='gamma must be a finite number >= 0, got -1'):
        norcal_adjust(torch.zeros(1, 3), [1, 2], -1)


def test_logit_adjustment_per_pixel_is_the_per_sample_formula():
    z = torch.randn(2, 3, 5, 4, generator=torch.Generator().manual_seed(0))
    counts = [7000, 200, 3]
    out = logit_adjust(z, counts, 0.8)
    pixels = z.permute(0, 2, 3, 1).reshape(-1, 3)
    pi = np.asarray(counts, dtype=np.float64) / sum(counts)
    want = pixels.double().numpy() - 0.8 * np.log(pi)
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy(), want,
                               rtol=1e-6, atol=1e-6)


def test_layers_apply_their_formula_in_eval_only():
    torch.manual_seed(0)
    x = torch.randn(4, 6)
    lin = NorCalLinear(6, 4, gamma=0.7).eval()
    with pytest.raises(RuntimeError, match='has no class counts'):
        lin(x)
    lin.set_counts([30, 20, 1])
    torch.testing.assert_close(lin(x), norcal_adjust(torch.nn.functional.linear(
        x, lin.weight, lin.bias), [30, 20, 1], 0.7))
    assert set(lin.state_dict()) == {'weight', 'bias'}  # counts are not saved
    with pytest.raises(ValueError, match='3 class counts but 2 classes'):
        NorCalLinear(6, 3).set_counts([1, 2, 3])
    lin.train()
    with pytest.raises(RuntimeError, match='post-hoc second stage'):
        lin(x)

    cos = NorCalCosineLinear(6, 4, scale=20.0, gamma=1.0).eval()
    cos.set_counts([30, 20, 1])
    plain = 20.0 * torch.nn.functional.normalize(x, dim=-1) @ torch.nn.functional.normalize(
        cos.weight, dim=-1).t()
    torch.testing.assert_close(cos(x), norcal_adjust(plain, [30, 20, 1], 1.0))
    assert set(cos.state_dict()) == {'weight', 'scale'}

    conv = torch.nn.Conv2d(6, 3, 1)
    la = posthoc_copy(conv, LogitAdjustedConv2d, tau=1.0).eval()
    la.set_counts([10, 100, 1000])
    fm = torch.randn(2, 6, 4, 5)
    torch.testing.assert_close(la(fm), logit_adjust(conv(fm), [10, 100, 1000], 1.0))
    with pytest.raises(TypeError, match='1x1 nn.Conv2d'):
        posthoc_copy(torch.nn.Conv2d(6, 3, 3), LogitAdjustedConv2d)
    with pytest.raises(ValueError, match='tau must be a finite number'):
        LogitAdjustedConv2d(6, 3, tau=float('inf'))


def test_one_copy_into_every_post_hoc_layer():
    """posthoc_copy turns a linear classifier into each post-hoc layer (the
    classification peers and NorCal) with its weights; one class-count
    path (set_counts) for all of them; only the layers of hosts whose heads
    do not refuse training themselves refuse it."""
    from disalign_mm.core import LogitAdjustedLinear, TauNormLinear
    torch.manual_seed(0)
    fc = torch.nn.Linear(5, 4)
    x = torch.randn(3, 5)
    counts = [40, 30, 20, 10]
    for kind, options in (('tau_norm', dict(tau=0.5)), ('logit_adjust', dict(tau=0.7)),
                          (NorCalLinear, dict(gamma=0.5))):
        new = posthoc_copy(fc, kind, **options)
        torch.testing.assert_close(new.weight, fc.weight)
        torch.testing.assert_close(new.bias, fc.bias)
        assert set(new.state_dict()) == {'weight', 'bias'}
    la = posthoc_copy(fc, 'logit_adjust', tau=0.7)
    assert isinstance(la, LogitAdjustedLinear) and la.training
    with pytest.raises(RuntimeError, match='LogitAdjustedLinear has no class counts'):
        la(x)
    la.set_counts(counts)
    torch.testing.assert_close(la(x), logit_adjust(fc(x), counts, 0.7))  # trains: no refusal
    nc = posthoc_copy(fc, 'norcal', gamma=0.5)  # 3 foreground classes + background
    nc.set_counts(counts[:3])
    with pytest.raises(RuntimeError, match='post-hoc second stage'):
        nc(x)
    torch.testing.assert_close(nc.eval()(x), norcal_adjust(fc(x), counts[:3], 0.5))
    with pytest.raises(TypeError, match='TauNormLinear replaces a linear classifier'):
        posthoc_copy(la, TauNormLinear)
    with pytest.raises(KeyError, match="unknown post-hoc layer 'nope'"):
        posthoc_copy(fc, 'nope')
