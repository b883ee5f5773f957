"""The registered GRW loss module (disalign_mm.engine.GRWCrossEntropyLoss):
the one module class over the core functions, every host's loss."""
import pytest
import torch
import torch.nn.functional as F

from disalign_mm.engine import GRWCrossEntropyLoss

COUNTS = [600.0, 60.0, 6.0]


def test_background_kept_at_weight_one_with_sampler_weights():
    loss = GRWCrossEntropyLoss(rho=1.0, class_counts=COUNTS, background_weight=1.0)
    assert loss.class_weight.tolist() == pytest.approx([0.027027, 0.270270, 2.702703, 1.0],
                                                       abs=1e-6)
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    labels = torch.tensor([0, 2, 3, 3, 1])  # 3 = background
    label_w = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0])  # the sampler drops one RoI
    out = loss(logits, labels, label_w, avg_factor=4.0)
    ce = F.cross_entropy(logits, labels, reduction='none')
    cw = loss.class_weight[labels] * label_w
    torch.testing.assert_close(out, (ce * cw).sum() / cw.sum())


def test_module_errors_and_late_counts():
    loss = GRWCrossEntropyLoss(rho=1.0)
    with pytest.raises(RuntimeError, match='no class counts'):
        loss(torch.randn(2, 3), torch.tensor([0, 1]))
    loss.set_class_counts(COUNTS)
    with pytest.raises(ValueError, match='predicts 4 classes but the class counts describe 3'):
        loss(torch.randn(2, 4), torch.tensor([0, 1]))
    assert loss(torch.randn(2, 3), torch.tensor([0, 1])).ndim == 0
    # 'count' mode honours the host's avg_factor; 'weighted' ignores it
    loss_c = GRWCrossEntropyLoss(rho=0.0, class_counts=COUNTS, avg_mode='count')
    logits, t = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    ce = F.cross_entropy(logits, t, reduction='sum')
    torch.testing.assert_close(loss_c(logits, t, avg_factor=8.0), ce / 8)
    torch.testing.assert_close(loss(logits, t, avg_factor=8.0),
                               F.cross_entropy(logits, t, weight=loss.class_weight))
