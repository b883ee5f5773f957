import pytest
import torch
import torch.nn.functional as F
from mmengine.runner.checkpoint import load_state_dict
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import disalign_mm.cls  # noqa: F401
from disalign_mm.core import DisAlignCalibration
from tests.calibration_keys import calibration_keys


def _linear_head(num_classes=3, in_channels=2, **kw):
    return MODELS.build(dict(type='DisAlignLinearClsHead', num_classes=num_classes,
                             in_channels=in_channels, **kw))


def _set_pinned(head):
    with torch.no_grad():
        head.fc.weight.copy_(torch.tensor([[1., 0.], [0., 1.], [1., 1.]]))
        head.fc.bias.copy_(torch.tensor([0., 0., 0.5]))
        head.fc.calibration.alpha.copy_(torch.tensor([2., 1., 0.5]))
        head.fc.calibration.beta.copy_(torch.tensor([0., 1., -1.]))
        head.fc.calibration.confidence.weight.copy_(torch.tensor([[1., -1.]]))
        head.fc.calibration.confidence.bias.zero_()


def test_disalign_linear_forward_pinned():
    head = _linear_head()
    _set_pinned(head)
    x = torch.tensor([[1., 2.]])
    # z = [1, 2, 3.5], sigma = sigmoid(1 - 2), s = alpha * z + beta = [2, 3, 0.75]
    out = head((x, ))
    assert out.shape == (1, 3)
    torch.testing.assert_close(out, torch.tensor([[1.268941, 2.268941, 2.760412]]),
                               atol=1e-5, rtol=0)


def test_disalign_head_starts_as_identity_and_keeps_init_after_init_weights():
    torch.manual_seed(0)
    head = _linear_head(num_classes=5, in_channels=8)
    head.init_weights()
    # the head's Normal(Linear) init_cfg must not redraw the confidence layer
    assert torch.equal(head.fc.calibration.confidence.weight, torch.zeros(1, 8))
    assert torch.equal(head.fc.calibration.alpha, torch.ones(5))
    assert torch.equal(head.fc.calibration.beta, torch.zeros(5))
    assert head.fc.weight.std() < 0.05  # Normal(std=0.01) as LinearClsHead
    x = torch.randn(4, 8)
    torch.testing.assert_close(head((x, )), F.linear(x, head.fc.weight, head.fc.bias))


def test_stage1_linear_checkpoint_loads_without_key_surgery():
    stage1 = MODELS.build(dict(type='LinearClsHead', num_classes=3, in_channels=2))
    head = _linear_head()
    res = head.load_state_dict(stage1.state_dict(), strict=False)
    assert res.unexpected_keys == []
    assert sorted(res.missing_keys) == calibration_keys('fc.calibration.')
    assert torch.equal(head.fc.weight, stage1.fc.weight)
    x = torch.randn(6, 2)
    torch.testing.assert_close(head((x, )), stage1((x, )))


@pytest.mark.parametrize('loader', ['torch', 'mmengine'])
def test_checkpoint_with_other_num_classes_is_an_error(loader):
    stage1 = MODELS.build(dict(type='LinearClsHead', num_classes=4, in_channels=2))
    head = _linear_head()
    with pytest.raises(ValueError, match=r'4 classes.*num_classes=3'):
        if loader == 'torch':
            head.load_state_dict(stage1.state_dict(), strict=False)
        else:  # what Runner.load_checkpoint uses: warns on shapes by default
            load_state_dict(head, stage1.state_dict(), strict=False)


def test_linear_checkpoint_into_cosine_head_is_an_error():
    stage1 = MODELS.build(dict(type='LinearClsHead', num_classes=3, in_channels=2))
    head = MODELS.build(dict(type='DisAlignCosineClsHead', num_classes=3, in_channels=2))
    with pytest.raises(ValueError, match='linear classifier.*DisAlignLinearClsHead'):
        head.load_state_dict(stage1.state_dict(), strict=False)
    cos = MODELS.build(dict(type='CosineClsHead', num_classes=3, in_channels=2))
    with pytest.raises(ValueError, match='cosine classifier'):
        _linear_head().load_state_dict(cos.state_dict(), strict=False)


def test_cosine_head_pinned_and_stage1_loads_into_disalign_cosine():
    head = MODELS.build(dict(type='CosineClsHead', num_classes=3, in_channels=2, scale=10.))
    with torch.no_grad():
        head.fc.weight.copy_(torch.tensor([[1., 0.], [0., 2.], [1., 1.]]))
    out = head((torch.tensor([[3., 4.]]), ))
    torch.testing.assert_close(out, torch.tensor([[6.0, 8.0, 9.899495]]), atol=1e-5, rtol=0)
    assert sorted(head.state_dict()) == ['fc.scale', 'fc.weight']

    da = MODELS.build(dict(type='DisAlignCosineClsHead', num_classes=3, in_channels=2))
    res = da.load_state_dict(head.state_dict(), strict=False)
    assert res.unexpected_keys == []
    assert res.missing_keys and all(k.startswith('fc.calibration.') for k in res.missing_keys)
    assert isinstance(da.fc.calibration, DisAlignCalibration)
    torch.testing.assert_close(da((torch.tensor([[3., 4.]]), )), out)


def _samples(labels):
    return [DataSample().set_gt_label(int(c)) for c in labels]


def test_loss_is_grw_cross_entropy_of_calibrated_logits():
    head = _linear_head(loss=dict(type='GRWCrossEntropyLoss', rho=1.0,
                                  class_counts=[100, 10, 1]))
    _set_pinned(head)
    # w ∝ 1/r, mean 1
    torch.testing.assert_close(head.loss_module.class_weight,
                               torch.tensor([0.027027, 0.27027, 2.7027]), atol=1e-5, rtol=0)
    x = torch.tensor([[1., 2.], [0., 1.], [2., -1.], [1., 1.]])
    target = torch.tensor([0, 2, 1, 2])
    losses = head.loss((x, ), _samples(target))
    ref = F.cross_entropy(head((x, )), target, weight=head.loss_module.class_weight)
    torch.testing.assert_close(losses['loss'], ref)
    torch.testing.assert_close(losses['loss'], torch.tensor(1.217857), atol=1e-5, rtol=0)
    losses['loss'].backward()
    grad = head.fc.calibration.alpha.grad
    assert grad is not None and grad.abs().sum() > 0


def test_predict_returns_calibrated_scores():
    head = _linear_head()
    _set_pinned(head)
    x = torch.tensor([[0., 1.], [3., -1.]])
    preds = head.predict((x, ))
    scores = torch.stack([p.pred_score for p in preds])
    torch.testing.assert_close(scores, F.softmax(head((x, )), dim=1))
    # calibration changes the decision of the first sample: fc alone says class 2
    assert F.linear(x, head.fc.weight, head.fc.bias)[0].argmax() == 2
    assert [int(p.pred_label) for p in preds] == [1, 0]


@pytest.mark.parametrize('confidence', ['input', 'constant', 'none'])
def test_ablation_switches_reach_the_calibration(confidence):
    head = _linear_head(num_classes=4, in_channels=3, calibration=dict(
        confidence=confidence, use_margin=False, alpha_init=2.0))
    assert head.fc.calibration.confidence_mode == confidence
    names = {n for n, _ in head.named_parameters()}
    assert 'fc.calibration.beta' not in names and 'fc.calibration.alpha' in names
    assert head((torch.randn(2, 3), )).shape == (2, 4)


def test_bad_head_arguments():
    with pytest.raises(ValueError, match='confidence must be one of'):
        _linear_head(calibration=dict(confidence='per-pixel'))
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build(dict(type='CosineClsHead', num_classes=0, in_channels=2))
