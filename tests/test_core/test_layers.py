"""The calibrated classifier layers every host uses: same parameters as the
classifier they replace, calibration at ``.calibration``, identity start."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from disalign_mm.core import (CalibratedConv2d, CalibratedCosineLinear, CalibratedLinear,
                              CosineLinear, DisAlignCalibration, calibrate)


def _holder(layer):
    m = nn.Module()
    m.cls = layer
    return m


@pytest.mark.parametrize('layer, x', [
    (nn.Linear(6, 4), torch.randn(5, 6)),
    (nn.Linear(6, 4, bias=False), torch.randn(5, 6)),
    (CosineLinear(6, 4, scale=20.0, learn_scale=False), torch.randn(5, 6)),
    (CosineLinear(6, 4), torch.randn(5, 6)),
    (nn.Conv2d(6, 4, 1), torch.randn(2, 6, 3, 3)),
])
def test_calibrate_keeps_names_weights_and_output(layer, x):
    stage1 = layer.state_dict()
    want = layer(x)
    new = calibrate(_holder(layer), 'cls')
    # the classifier's own entries under their own names, plus the calibration
    own = {k: v for k, v in new.state_dict().items() if not k.startswith('calibration.')}
    assert own.keys() == stage1.keys()
    for k in stage1:
        assert torch.equal(own[k], stage1[k]), k
    assert isinstance(new.calibration, DisAlignCalibration)
    assert {n for n, _ in new.calibration.named_parameters()} == {
        'alpha', 'beta', 'confidence.weight', 'confidence.bias'}
    # identity start: the stage-1 output exactly
    assert torch.equal(new(x), want)
    # a stage-1 state dict loads as is, only the calibration is missing
    fresh = calibrate(_holder(type(layer)(*_args(layer))), 'cls')
    res = fresh.load_state_dict(stage1, strict=False)
    assert res.unexpected_keys == []
    assert sorted(res.missing_keys) == [
        'calibration.alpha', 'calibration.beta', 'calibration.confidence.bias',
        'calibration.confidence.weight', 'calibration.feature_count', 'calibration.feature_mean',
        'calibration.feature_std', 'calibration.logit_count', 'calibration.logit_rms']


def _args(layer):
    if isinstance(layer, nn.Conv2d):
        return layer.in_channels, layer.out_channels, 1
    if isinstance(layer, CosineLinear):
        return layer.in_features, layer.out_features, float(layer.scale), \
            isinstance(layer.scale, nn.Parameter)
    return layer.in_features, layer.out_features, layer.bias is not None


def test_forward_is_calibration_of_classifier_output():
    torch.manual_seed(0)
    layer = CalibratedLinear(3, 4)
    with torch.no_grad():
        layer.calibration.alpha.copy_(torch.tensor([2., 1., .5, 1.]))
        layer.calibration.beta.copy_(torch.tensor([0., 1., -1., .5]))
        layer.calibration.confidence.weight.copy_(torch.tensor([[1., -1., .5]]))
    x = torch.randn(7, 3)
    z = F.linear(x, layer.weight, layer.bias)
    torch.testing.assert_close(layer(x), layer.calibration(z, x), rtol=0, atol=0)
    sigma = torch.sigmoid(x @ torch.tensor([1., -1., .5]))[:, None]
    s = torch.tensor([2., 1., .5, 1.]) * z + torch.tensor([0., 1., -1., .5])
    torch.testing.assert_close(layer(x), sigma * s + (1 - sigma) * z)


def test_background_last_passes_the_background_through():
    layer = CalibratedLinear(3, 5, background_last=True, calibration=dict(alpha_init=3.0))
    assert layer.calibration.num_classes == 4
    x = torch.randn(2, 3)
    z = F.linear(x, layer.weight, layer.bias)
    out = layer(x)
    assert torch.equal(out[:, -1], z[:, -1])
    assert not torch.allclose(out[:, :-1], z[:, :-1])
    cos = CalibratedCosineLinear(3, 5, scale=20.0, background_last=True)
    assert cos.calibration.num_classes == 4 and float(cos.scale) == 20.0


def test_dense_layer_has_one_confidence_per_pixel():
    layer = CalibratedConv2d(4, 3, calibration=dict(alpha_init=2.0))
    with torch.no_grad():
        layer.calibration.confidence.weight.copy_(torch.tensor([[1., 0., 0., 0.]]))
    x = torch.zeros(1, 4, 2, 2)
    x[0, 0, 0, 0] = 50.0   # sigma ~ 1 at one pixel
    x[0, 0, 1, 1] = -50.0  # sigma ~ 0 at another
    z = F.conv2d(x, layer.weight, layer.bias)
    out = layer(x)
    torch.testing.assert_close(out[0, :, 0, 0], 2 * z[0, :, 0, 0])
    torch.testing.assert_close(out[0, :, 1, 1], z[0, :, 1, 1])


def test_init_weights_restores_the_configured_start():
    layer = CalibratedLinear(3, 4, calibration=dict(alpha_init=2.0,
                                                    confidence_weight_init=0.1))
    with torch.no_grad():
        for p in layer.calibration.parameters():
            p.normal_()
    layer.init_weights()
    assert torch.equal(layer.calibration.alpha, torch.full((4, ), 2.0))
    assert torch.equal(layer.calibration.beta, torch.zeros(4))
    assert torch.equal(layer.calibration.confidence.weight, torch.full((1, 3), 0.1))


def test_checkpoint_of_another_shape_is_an_error_naming_both_shapes():
    layer = CalibratedLinear(3, 4)
    with pytest.raises(ValueError, match=r'cls\.weight has shape \(5, 3\).*\(4, 3\)'):
        _holder(layer).load_state_dict({'cls.weight': torch.zeros(5, 3),
                                        'cls.bias': torch.zeros(5)}, strict=False)


def test_calibrate_refuses_other_layers_and_twice():
    with pytest.raises(TypeError, match='1x1'):
        calibrate(_holder(nn.Conv2d(4, 3, 3)), 'cls')
    with pytest.raises(TypeError, match='1x1'):
        calibrate(_holder(nn.Conv2d(4, 3, 1, bias=False)), 'cls')
    with pytest.raises(TypeError, match='no classifier module'):
        calibrate(_holder(nn.Linear(2, 2)), 'nope')
    h = _holder(nn.Linear(2, 3))
    calibrate(h, 'cls')
    with pytest.raises(TypeError, match='twice'):
        calibrate(h, 'cls')
    with pytest.raises(ValueError, match='leave 0 classes'):
        CalibratedLinear(2, 1, background_last=True)
