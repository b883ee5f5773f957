"""CalibrationMonitor: the confidence's distribution and the changed decisions."""
import torch

from disalign_mm.core import CalibratedConv2d, CalibratedLinear, CalibrationMonitor


def _layer(confidence='input'):
    layer = CalibratedLinear(2, 3, calibration=dict(confidence=confidence))
    with torch.no_grad():
        layer.weight.copy_(torch.eye(3, 2))
        layer.bias.copy_(torch.tensor([0., 0., -1.]))
        layer.calibration.beta.copy_(torch.tensor([0., 0., 10.]))  # pushes class 2
        if confidence == 'input':
            layer.calibration.confidence.weight.copy_(torch.tensor([[10., 0.]]))
        elif confidence == 'constant':
            layer.calibration.confidence_bias.fill_(-10.0)
    return layer


def test_sigma_fractions_and_changed_decisions():
    layer = _layer()
    x = torch.tensor([[1., 0.], [-1., 0.], [0., 0.], [2., 5.]])
    # sigma = sigmoid(10 x0): ~1, ~0, 0.5, ~1; z argmax: 0, 1?, 0, 1
    monitor = CalibrationMonitor(layer).start()
    out = layer(x)
    monitor.stop()
    layer(x)  # not recorded after stop()
    s = CalibrationMonitor.summary(monitor.counts())
    sigma = torch.sigmoid(10 * x[:, 0])
    assert s['inputs'] == 4
    assert abs(s['sigma_mean'] - float(sigma.mean())) < 1e-6
    assert s['sigma_low'] == 0.25 and s['sigma_high'] == 0.5
    z = x @ torch.eye(3, 2).t() + torch.tensor([0., 0., -1.])
    want = float((z.argmax(1) != out.argmax(1)).float().mean())
    assert s['changed'] == want and 0 < want < 1


def test_constant_and_no_confidence():
    x = torch.randn(6, 2)
    layer = _layer('constant')
    monitor = CalibrationMonitor(layer).start()
    assert monitor.calibrations == [layer.calibration]
    layer(x)
    s = CalibrationMonitor.summary(monitor.counts())
    assert s['sigma_low'] == 1.0 and s['inputs'] == 6  # sigmoid(-10) for every input
    layer = _layer('none')
    monitor = CalibrationMonitor(layer).start()
    layer(x)
    s = CalibrationMonitor.summary(monitor.counts())
    assert 'sigma_mean' not in s and s['changed'] > 0
    assert CalibrationMonitor.summary(torch.zeros(6, dtype=torch.float64)) is None


def test_dense_maps_count_pixels():
    layer = CalibratedConv2d(2, 3)
    monitor = CalibrationMonitor(layer).start()
    layer(torch.randn(2, 2, 4, 5))
    s = CalibrationMonitor.summary(monitor.counts())
    assert s['inputs'] == 40 and s['sigma_mean'] == 0.5 and s['changed'] == 0
