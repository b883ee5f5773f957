"""Generalized re-weighting, Eq. 9-11."""
import pytest
import torch
import torch.nn.functional as F

from disalign_mm.core import grw_cross_entropy, grw_weights

COUNTS = [600.0, 60.0, 6.0]


def test_rho_zero_is_all_ones():
    torch.testing.assert_close(grw_weights(COUNTS, 0.0), torch.ones(3))


def test_rho_one_is_normalised_inverse_frequency():
    # 1/r = total/n = [1.11, 11.1, 111]; normalised to mean 1
    inv = torch.tensor([1 / 600, 1 / 60, 1 / 6])
    torch.testing.assert_close(grw_weights(COUNTS, 1.0), inv * 3 / inv.sum())
    torch.testing.assert_close(grw_weights(COUNTS, 1.0),
                               torch.tensor([0.027027, 0.270270, 2.702703]), atol=1e-6, rtol=0)


def test_rho_general_and_ratio_invariance():
    w = grw_weights(COUNTS, 0.5)
    raw = torch.tensor([600.0, 60.0, 6.0]).pow(-0.5)
    torch.testing.assert_close(w, raw * 3 / raw.sum())
    assert w.mean().item() == pytest.approx(1.0)
    # counts or ratios: same weights
    torch.testing.assert_close(grw_weights([c / 666 for c in COUNTS], 0.5), w)


def test_zero_count_is_an_error_or_explicit_floor():
    with pytest.raises(ValueError, match=r'classes \[1\] have zero training samples.*min_count'):
        grw_weights([10, 0, 5], 1.0)
    with pytest.warns(UserWarning, match=r'classes \[1\].*floored'):
        w = grw_weights([10, 0, 5], 1.0, min_count=1)
    torch.testing.assert_close(w, grw_weights([10, 1, 5], 1.0))
    assert torch.isfinite(w).all()
    with pytest.raises(ValueError, match='non-negative'):
        grw_weights([10, -1], 1.0)


def test_weighted_mean_equals_torch_weighted_ce():
    torch.manual_seed(0)
    logits, target = torch.randn(8, 3), torch.tensor([0, 1, 2, 2, 1, 0, 0, 2])
    w = grw_weights(COUNTS, 1.2)
    torch.testing.assert_close(grw_cross_entropy(logits, target, w),
                               F.cross_entropy(logits, target, weight=w))


def test_count_mean_is_eq9():
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.5, 0.5]])
    target = torch.tensor([0, 1, 0])
    w = torch.tensor([2.0, 0.5])
    ce = F.cross_entropy(logits, target, reduction='none')
    expected = (2.0 * ce[0] + 0.5 * ce[1] + 2.0 * ce[2]) / 3
    torch.testing.assert_close(grw_cross_entropy(logits, target, w, avg_mode='count'), expected)
    # exact value computed once: ce = [0.313262, 0.126928, 0.693147]
    assert expected.item() == pytest.approx((0.626523 + 0.063464 + 1.386294) / 3, abs=1e-5)


@pytest.mark.parametrize('avg_mode', ['weighted', 'count'])
def test_ignored_pixels_contribute_nothing(avg_mode):
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, :2] = 255
    w = torch.tensor([0.5, 1.0, 1.5])
    loss = grw_cross_entropy(logits, target, w, ignore_index=255, avg_mode=avg_mode)
    # changing the logits of ignored pixels changes nothing, gradient there is 0
    logits2 = logits.clone()
    logits2[0, :, :2] = 100.0
    torch.testing.assert_close(
        grw_cross_entropy(logits2, target, w, ignore_index=255, avg_mode=avg_mode), loss)
    lg = logits.clone().requires_grad_()
    grw_cross_entropy(lg, target, w, ignore_index=255, avg_mode=avg_mode).backward()
    assert lg.grad[0, :, :2].abs().sum() == 0
    if avg_mode == 'weighted':
        ref = F.cross_entropy(logits, target, weight=w, ignore_index=255)
    else:
        per = F.cross_entropy(logits, target, weight=w, ignore_index=255, reduction='none')
        ref = per.sum() / (target != 255).sum()
    torch.testing.assert_close(loss, ref)


def test_all_ignored_gives_zero_not_nan():
    loss = grw_cross_entropy(torch.randn(1, 3, 2, 2), torch.full((1, 2, 2), 255),
                             torch.ones(3), ignore_index=255)
    assert loss.item() == 0.0


def test_labels_out_of_range_are_a_clear_error():
    with pytest.raises(ValueError, match=r'labels out of range: found \[7\] with 3 classes'):
        grw_cross_entropy(torch.randn(2, 3), torch.tensor([0, 7]), torch.ones(3))
