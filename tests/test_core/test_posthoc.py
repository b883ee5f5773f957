"""tau_normalize and logit_adjust against hand computations."""
import math

import numpy as np
import pytest
import torch

from disalign_mm.core import class_log_prior, logit_adjust, tau_normalize


def test_tau_normalize_exact_values():
    w = torch.tensor([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]])  # norms 5, 2, 1
    torch.testing.assert_close(
        tau_normalize(w, 1.0), torch.tensor([[0.6, 0.8], [0.0, 1.0], [1.0, 0.0]]),
        rtol=0, atol=1e-7)
    got = tau_normalize(w, 0.5)
    want = torch.tensor([[3 / math.sqrt(5), 4 / math.sqrt(5)], [0.0, 2 / math.sqrt(2)],
                         [1.0, 0.0]])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    # every row norm becomes ||w|| ** (1 - tau)
    w = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    for tau in (0.3, 0.7, 1.0, 2.0):
        torch.testing.assert_close(tau_normalize(w, tau).norm(dim=1),
                                   w.norm(dim=1) ** (1 - tau), rtol=1e-5, atol=1e-6)


def test_tau_zero_is_identity_and_new_tensor():
    w = torch.randn(4, 3)
    out = tau_normalize(w, 0)
    assert torch.equal(out, w) and out is not w
    w[0] = 0  # no division at tau 0: a zero row is fine
    assert torch.equal(tau_normalize(w, 0.0), w)


def test_tau_normalize_conv_weight_and_gradient():
    w = torch.randn(3, 4, 1, 1, requires_grad=True)
    out = tau_normalize(w, 1.0)
    assert out.shape == (3, 4, 1, 1)
    torch.testing.assert_close(out.flatten(1).norm(dim=1), torch.ones(3))
    out.sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()


def test_tau_normalize_bad_inputs():
    with pytest.raises(ValueError, match='tau must be a finite number >= 0, got -0.5'):
        tau_normalize(torch.ones(2, 2), -0.5)
    with pytest.raises(ValueError, match='tau must be'):
        tau_normalize(torch.ones(2, 2), float('nan'))
    w = torch.ones(4, 3)
    w[2] = 0
    with pytest.raises(ValueError, match=r'rows \[2\] have zero norm \(1 of 4 classes\)'):
        tau_normalize(w, 1.0)
    with pytest.raises(ValueError, match='expected a'):
        tau_normalize(torch.ones(3), 1.0)


def test_logit_adjust_exact_values():
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    counts = [60, 30, 10]
    pi = np.array(counts) / 100
    want = logits.numpy() - np.log(pi)[None]
    torch.testing.assert_close(logit_adjust(logits, counts), torch.from_numpy(want).float())
    want = logits.numpy() - 0.5 * np.log(pi)[None]
    torch.testing.assert_close(logit_adjust(logits, counts, tau=0.5),
                               torch.from_numpy(want).float())
    # tau 0: unchanged; scaling the counts does not change the prior
    assert torch.equal(logit_adjust(logits, counts, tau=0.0), logits)
    torch.testing.assert_close(logit_adjust(logits, [6, 3, 1]), logit_adjust(logits, counts))
    # the rarest class gains -log(0.1) = 2.3026, the most frequent -log(0.6) = 0.5108
    torch.testing.assert_close(logit_adjust(logits, counts)[1],
                               torch.tensor([0.5108256, 1.2039728, 2.3025851]))


def test_logit_adjust_dense_and_dtype_device():
    logits = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    counts = torch.tensor([5, 1, 4])
    out = logit_adjust(logits, counts, tau=2.0)
    assert out.dtype == torch.float64 and out.shape == logits.shape
    want = logits - 2.0 * torch.log(torch.tensor([0.5, 0.1, 0.4], dtype=torch.float64)).reshape(
        1, 3, 1, 1)
    torch.testing.assert_close(out, want, rtol=0, atol=1e-12)
    half = logit_adjust(logits.half(), counts)
    assert half.dtype == torch.float16
    assert torch.equal(class_log_prior([1, 1, 2]),
                       torch.log(torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)))


def test_logit_adjust_bad_inputs():
    with pytest.raises(ValueError, match='2 class counts but 3 classes'):
        logit_adjust(torch.zeros(4, 3), [1, 2])
    with pytest.raises(ValueError, match=r'classes \[1, 3\] have a count that is zero, '
                       r'negative or not finite \(2 of 4'):
        logit_adjust(torch.zeros(4, 4), [5, 0, 2, -1])
    with pytest.raises(ValueError, match=r'classes \[0\]'):
        logit_adjust(torch.zeros(1, 2), [float('nan'), 1])
    with pytest.raises(ValueError, match='tau must be'):
        logit_adjust(torch.zeros(1, 2), [1, 1], tau=-1)
    with pytest.raises(ValueError, match='classes in dimension 1'):
        logit_adjust(torch.zeros(3), [1, 1, 1])
