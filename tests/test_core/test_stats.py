"""Feature statistics of the standardised confidence: moments, floors,
validation, and checkpoints written before they existed."""
import warnings

import pytest
import torch

from disalign_mm.core import CalibratedLinear, DisAlignCalibration, FeatureMoments
from disalign_mm.core.stats import collect_feature_moments


def test_moments_of_vectors_and_maps_match_torch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, generator=g) * torch.tensor([1., 10., 100., 0.1]) + 3
    m = FeatureMoments()
    m.update(x[:20])
    m.update(x[20:])
    mean, std, constant = m.finalize()
    torch.testing.assert_close(mean, x.mean(0))
    torch.testing.assert_close(std, x.std(0, unbiased=False))
    assert constant == 0 and m.count == 50
    maps = torch.randn(3, 4, 5, 6, generator=g)
    m = FeatureMoments()
    m.update(maps)
    mean, std, _ = m.finalize()
    flat = maps.transpose(0, 1).flatten(1)
    torch.testing.assert_close(mean, flat.mean(1))
    torch.testing.assert_close(std, flat.std(1, unbiased=False))
    assert m.count == 3 * 5 * 6


def test_constant_channels_are_centred_not_scaled_and_empty_is_an_error():
    x = torch.randn(30, 3)
    x[:, 1] = 7.0  # a dead (constant) channel
    m = FeatureMoments()
    m.update(x)
    mean, std, constant = m.finalize()
    assert constant == 1 and std[1] == 1.0 and mean[1] == pytest.approx(7.0)
    assert torch.isfinite(std).all()
    m = FeatureMoments()
    m.update(torch.zeros(4, 3))
    mean, std, constant = m.finalize()  # everything constant: nothing is scaled
    assert constant == 3 and torch.equal(std, torch.ones(3))
    with pytest.raises(ValueError, match='no stage-1 features were seen'):
        FeatureMoments().finalize()


def test_standardised_confidence_is_the_affine_map_of_eq4():
    cal = DisAlignCalibration(2, in_channels=3)
    with torch.no_grad():
        cal.confidence.weight.copy_(torch.tensor([[1., -2., .5]]))
        cal.confidence.bias.fill_(0.3)
    mean, std = torch.tensor([1., 2., 3.]), torch.tensor([2., .5, 4.])
    cal.set_feature_stats(mean, std, 10)
    x = torch.randn(5, 3)
    want = torch.sigmoid(((x - mean) / std) @ torch.tensor([1., -2., .5]) + 0.3)[:, None]
    torch.testing.assert_close(cal.sigma(x), want)
    maps = torch.randn(2, 3, 4, 4)
    want = torch.sigmoid(torch.einsum('nchw,c->nhw', (maps - mean[:, None, None])
                                      / std[:, None, None], torch.tensor([1., -2., .5])) + 0.3)
    torch.testing.assert_close(cal.sigma(maps)[:, 0], want)
    assert cal.has_feature_stats
    # invariance: rescaled and shifted features with their own statistics
    cal2 = DisAlignCalibration(2, in_channels=3)
    cal2.load_state_dict(cal.state_dict())
    cal2.set_feature_stats(mean * 100 - 5, std * 100, 10)
    torch.testing.assert_close(cal2.sigma(x * 100 - 5), cal.sigma(x))


def test_raw_features_until_statistics_are_set_and_when_switched_off():
    cal = DisAlignCalibration(2, in_channels=3)
    raw = DisAlignCalibration(2, in_channels=3, standardize_features=False)
    assert not cal.has_feature_stats and not raw.has_feature_stats
    assert 'feature_mean' not in raw.state_dict()
    raw.load_state_dict({k: v for k, v in cal.state_dict().items() if 'feature' not in k})
    with torch.no_grad():
        for c in (cal, raw):
            c.confidence.weight.copy_(torch.tensor([[1., 2., 3.]]))
    x = torch.randn(4, 3)
    torch.testing.assert_close(cal.sigma(x), raw.sigma(x))
    with pytest.raises(RuntimeError, match='does not standardise'):
        raw.set_feature_stats(torch.zeros(3), torch.ones(3), 1)
    assert 'feature_mean' not in DisAlignCalibration(2, confidence='constant').state_dict()


@pytest.mark.parametrize('mean, std, count, match', [
    (torch.zeros(4), torch.ones(3), 5, 'of 4 / 3 channels'),
    (torch.zeros(3), torch.zeros(3), 5, 'positive std'),
    (torch.full((3, ), float('nan')), torch.ones(3), 5, 'finite'),
    (torch.zeros(3), torch.ones(3), 0, 'from 0 samples'),
])
def test_bad_statistics_are_clear_errors(mean, std, count, match):
    with pytest.raises(ValueError, match=match):
        DisAlignCalibration(2, in_channels=3).set_feature_stats(mean, std, count)


def test_a_stage2_checkpoint_without_statistics_keeps_reading_raw_features():
    old = {'calibration.alpha': torch.ones(2), 'calibration.beta': torch.zeros(2),
           'calibration.confidence.weight': torch.tensor([[1., 2., 3.]]),
           'calibration.confidence.bias': torch.zeros(1),
           'weight': torch.randn(2, 3), 'bias': torch.zeros(2)}
    layer = CalibratedLinear(3, 2)
    layer.calibration.set_feature_stats(torch.ones(3), torch.full((3, ), 2.), 7)
    with pytest.warns(UserWarning, match='no feature statistics.*raw features'):
        res = layer.load_state_dict(old, strict=True)
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert not layer.calibration.has_feature_stats
    x = torch.randn(4, 3)
    torch.testing.assert_close(layer.calibration.sigma(x),
                               torch.sigmoid(x @ torch.tensor([1., 2., 3.]))[:, None])
    # a stage-1 checkpoint (no calibration at all) loads without the warning
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        CalibratedLinear(3, 2).load_state_dict(
            {'weight': torch.randn(2, 3), 'bias': torch.zeros(2)}, strict=False)


def test_collect_feature_moments_sees_what_reaches_each_calibration():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), CalibratedLinear(3, 4))
    batches = [torch.randn(5, 2) for _ in range(3)]
    moments = collect_feature_moments(model, batches, model)
    assert list(moments) == ['1.calibration']
    feats = model[0](torch.cat(batches)).detach()
    mean, std, _ = moments['1.calibration'].finalize()
    torch.testing.assert_close(mean, feats.mean(0))
    torch.testing.assert_close(std, feats.std(0, unbiased=False))
