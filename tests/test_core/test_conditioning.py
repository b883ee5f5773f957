"""The conditioned magnitude: the gradient of alpha_j divided by the squared
RMS of the stage-1 logit z_j, forward values untouched; its statistics,
floors, validation, and checkpoints written before it existed."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from disalign_mm.core import (CalibratedConv2d, CalibratedLinear, DisAlignCalibration,
                              FeatureMoments, collect_moments, grw_weights)

Z = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0], [1.0, 1.0, -4.0]])
X = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.2]])
RMS = torch.tensor([2.0, 0.5, 4.0])


def _trained(condition=True, **kw):
    cal = DisAlignCalibration(3, in_channels=2, condition_magnitude=condition, **kw)
    with torch.no_grad():
        cal.alpha.copy_(torch.tensor([1.5, 0.8, 1.2]))
        cal.beta.copy_(torch.tensor([0.1, -0.2, 0.3]))
        cal.confidence.weight.copy_(torch.tensor([[0.3, -0.1]]))
        cal.confidence.bias.fill_(0.2)
    if condition:
        cal.set_logit_stats(RMS, 10)
    return cal


def _grads(cal, z=Z, x=X):
    cal.zero_grad()
    out = cal(z, x)
    F.cross_entropy(out, torch.tensor([0, 2, 1])).backward()
    return out.detach(), {n: p.grad.clone() for n, p in cal.named_parameters()}


def test_forward_is_unchanged_and_only_alphas_gradient_is_divided_by_rms_squared():
    out, g = _grads(_trained(True))
    plain_out, plain = _grads(_trained(False))
    assert torch.equal(out, plain_out)  # the same values, bit for bit
    torch.testing.assert_close(g['alpha'], plain['alpha'] / RMS ** 2)
    for name in ('beta', 'confidence.weight', 'confidence.bias'):
        torch.testing.assert_close(g[name], plain[name], rtol=0, atol=0)
    # without gradients (eval, inference) alpha is used as is
    cal = _trained(True)
    with torch.no_grad():
        assert torch.equal(cal(Z, X), out)
        assert cal.magnitude() is cal.alpha


@pytest.mark.parametrize('confidence', ['input', 'constant', 'none'])
def test_every_confidence_mode_and_dense_maps(confidence):
    cal = DisAlignCalibration(3, in_channels=2, confidence=confidence)
    cal.set_logit_stats(RMS, 10)
    ref = DisAlignCalibration(3, in_channels=2, confidence=confidence, condition_magnitude=False)
    ref.load_state_dict(cal.state_dict(), strict=False)
    z, x = torch.randn(2, 3, 4, 4), torch.randn(2, 2, 4, 4)
    for c in (cal, ref):
        with torch.no_grad():
            c.beta.fill_(0.5)  # a non-zero delta, so that every parameter gets a gradient
        c(z, x).pow(2).sum().backward()
    torch.testing.assert_close(cal.alpha.grad, ref.alpha.grad / RMS ** 2)
    torch.testing.assert_close(cal.beta.grad, ref.beta.grad)


def test_sgd_on_it_is_sgd_on_the_reparametrisation_a_equals_rms_times_alpha():
    """Momentum and weight decay included: the conditioning is a change of
    the variable the optimiser steps in, not of the model."""
    cal = _trained(True)
    a = (RMS * cal.alpha.detach()).requires_grad_()
    beta = cal.beta.detach().clone().requires_grad_()
    conf = [p.detach().clone().requires_grad_() for p in cal.confidence.parameters()]
    kw = dict(lr=0.3, momentum=0.9, weight_decay=5e-4)
    opt = torch.optim.SGD(cal.parameters(), **kw)
    opt_ref = torch.optim.SGD([a, beta] + conf, **kw)
    y = torch.tensor([0, 2, 1])
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(cal(Z, X), y).backward()
        opt.step()
        opt_ref.zero_grad()
        sigma = torch.sigmoid(X @ conf[0].t() + conf[1])
        F.cross_entropy(Z + sigma * ((a / RMS - 1) * Z + beta), y).backward()
        opt_ref.step()
    torch.testing.assert_close(cal.alpha.detach(), (a / RMS).detach())
    torch.testing.assert_close(cal.beta.detach(), beta.detach())


def test_switched_off_or_without_magnitude_there_is_nothing_to_condition():
    for kw in (dict(condition_magnitude=False), dict(use_magnitude=False)):
        cal = DisAlignCalibration(3, in_channels=2, **kw)
        assert not cal.condition_magnitude and 'logit_rms' not in cal.state_dict()
        with pytest.raises(RuntimeError, match='does not condition its magnitude'):
            cal.set_logit_stats(RMS, 1)
    # LWS (the magnitude alone) is conditioned too
    lws = DisAlignCalibration(3, use_margin=False, confidence='none')
    assert lws.condition_magnitude and sorted(lws.state_dict()) == [
        'alpha', 'logit_count', 'logit_rms']
    # until statistics are set: r = 1, the plain gradient
    assert torch.equal(lws.logit_rms, torch.ones(3)) and not lws.has_logit_stats
    assert lws.needs_stats
    lws.set_logit_stats(RMS, 4)
    assert lws.has_logit_stats and not lws.needs_stats and float(lws.logit_count) == 4


def test_alpha_init_keeps_its_meaning():
    # the official classification start: alpha 2, confidence weight 0.1
    cal = DisAlignCalibration(3, in_channels=2, alpha_init=2.0, confidence_weight_init=0.1)
    cal.set_logit_stats(RMS, 10)
    assert torch.equal(cal.alpha, torch.full((3, ), 2.0))
    sigma = torch.sigmoid(X @ torch.full((2, ), 0.1)).unsqueeze(1)
    torch.testing.assert_close(cal(Z, X), (1 + sigma) * Z)


@pytest.mark.parametrize('rms,count,match', [
    (torch.ones(2), 1, 'of 2 classes for a calibration of 3'),
    (torch.tensor([1., 0., 1.]), 1, 'finite and positive'),
    (torch.tensor([1., float('nan'), 1.]), 1, 'finite and positive'),
    (torch.ones(3), 0, 'from 0 samples'),
])
def test_bad_logit_statistics_are_clear_errors(rms, count, match):
    with pytest.raises(ValueError, match=match):
        DisAlignCalibration(3, in_channels=2).set_logit_stats(rms, count)


def test_rms_of_logits_floors_and_empty():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(40, 3, generator=g) * torch.tensor([1., 10., 0.1]) - 2
    m = FeatureMoments()
    m.update(z[:15])
    m.update(z[15:])
    rms, zero = m.rms()
    torch.testing.assert_close(rms, z.pow(2).mean(0).sqrt())
    assert zero == 0
    z[:, 1] = 0.0  # a class whose logit is always 0: alpha_j does nothing, plain gradient
    m = FeatureMoments()
    m.update(z)
    rms, zero = m.rms()
    assert zero == 1 and rms[1] == 1.0
    assert rms[0] == pytest.approx(float(z[:, 0].pow(2).mean().sqrt()))
    m = FeatureMoments()
    m.update(torch.zeros(5, 3))  # every logit 0: nothing is conditioned, no NaN
    rms, zero = m.rms()
    assert zero == 3 and torch.equal(rms, torch.ones(3))
    cal = DisAlignCalibration(3, in_channels=2)
    cal.set_logit_stats(rms, 5)
    _, grads = _grads(cal, z=torch.zeros(3, 3))
    assert all(torch.isfinite(g).all() for g in grads.values())
    with pytest.raises(ValueError, match='no stage-1 logits were seen'):
        FeatureMoments().rms()


def test_collect_moments_sees_the_calibrated_logits_without_the_background():
    layer = CalibratedLinear(4, 3 + 1, background_last=True)
    conv = CalibratedConv2d(4, 3, calibration=dict(confidence='none'))
    model = torch.nn.ModuleDict(dict(fc=layer, seg=conv))
    feats = [torch.randn(6, 4) for _ in range(2)]
    maps = [torch.randn(2, 4, 3, 3) for _ in range(2)]

    def forward(i):
        model['fc'](feats[i])
        model['seg'](maps[i])

    moments = collect_moments(model, range(2), forward)
    assert sorted(moments) == ['fc.calibration', 'seg.calibration']
    fg = layer.calibration.num_classes
    logits = torch.cat([F.linear(f, layer.weight, layer.bias)[:, :fg] for f in feats]).detach()
    rms, _ = moments['fc.calibration'].logits.rms()
    torch.testing.assert_close(rms, logits.pow(2).mean(0).sqrt())
    assert moments['fc.calibration'].logits.count == 12
    assert moments['fc.calibration'].features.count == 12
    # per pixel, and no feature moments for a calibration without an input confidence
    seg = moments['seg.calibration']
    assert seg.features is None and seg.logits.count == 2 * 2 * 9
    dense = torch.cat([F.conv2d(m, conv.weight, conv.bias) for m in maps]).detach()
    torch.testing.assert_close(seg.logits.rms()[0], dense.pow(2).mean((0, 2, 3)).sqrt())


def test_a_stage2_checkpoint_without_logit_statistics_keeps_the_plain_gradient():
    old = {'calibration.alpha': torch.tensor([1.5, 0.8, 1.2]),
           'calibration.beta': torch.zeros(3),
           'calibration.confidence.weight': torch.tensor([[1., 2.]]),
           'calibration.confidence.bias': torch.zeros(1),
           'calibration.feature_mean': torch.zeros(2), 'calibration.feature_std': torch.ones(2),
           'calibration.feature_count': torch.tensor(5., dtype=torch.float64),
           'weight': torch.randn(3, 2), 'bias': torch.zeros(3)}
    layer = CalibratedLinear(2, 3)
    layer.calibration.set_logit_stats(RMS, 7)
    with pytest.warns(UserWarning, match='no logit statistics.*unconditioned gradient'):
        res = layer.load_state_dict(old, strict=True)
    assert res.missing_keys == [] and res.unexpected_keys == []
    cal = layer.calibration
    assert torch.equal(cal.alpha.detach(), old['calibration.alpha'])  # effective, as saved
    assert not cal.has_logit_stats and torch.equal(cal.logit_rms, torch.ones(3))
    plain = CalibratedLinear(2, 3, calibration=dict(condition_magnitude=False))
    plain.load_state_dict(old)
    x = torch.randn(4, 2)
    for m in (layer, plain):
        F.cross_entropy(m(x), torch.tensor([0, 1, 2, 0])).backward()
    assert torch.equal(layer(x), plain(x))
    torch.testing.assert_close(cal.alpha.grad, plain.calibration.alpha.grad, rtol=0, atol=0)
    # stage-1 checkpoints and stage 2s without a magnitude load without the warning
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        CalibratedLinear(2, 3).load_state_dict(
            {'weight': torch.randn(3, 2), 'bias': torch.zeros(3)}, strict=False)
        margin_only = CalibratedLinear(2, 3, calibration=dict(use_magnitude=False))
        CalibratedLinear(2, 3).load_state_dict(margin_only.state_dict(), strict=False)


# ---- the shipped recipe's first steps at logit scales 0.1x to 100x ----
def _first_steps(scale, condition, steps=40):
    """Fashion-MNIST-LT's stage-2 recipe (SGD lr 0.1, momentum 0.9, weight
    decay 5e-4, GRW rho 1.2) on a stage-1 classifier whose logits are
    multiplied by ``scale``; the training loss before and after each step.

    Stage 1 is the Bayes classifier of the long-tailed training data (unit
    Gaussians around class centres, the training prior): calibrated logits,
    RMS about 2.5 at scale 1, biased to the head classes."""
    g = torch.Generator().manual_seed(0)
    counts = [60, 30, 10, 4]
    centres = torch.randn(4, 5, generator=g)
    y = torch.cat([torch.full((n, ), k) for k, n in enumerate(counts)])
    x = centres[y] + torch.randn(len(y), 5, generator=g)
    layer = CalibratedLinear(5, 4, calibration=dict(condition_magnitude=condition))
    with torch.no_grad():
        prior = torch.tensor(counts, dtype=torch.float).log()
        layer.weight.copy_(centres * scale)
        layer.bias.copy_((prior - 0.5 * centres.pow(2).sum(1)) * scale)
        feats, logits = collect_moments(layer, [x], layer)['calibration']
        layer.calibration.set_feature_stats(*feats.finalize()[:2], feats.count)
        if condition:
            layer.calibration.set_logit_stats(logits.rms()[0], logits.count)
    params = list(layer.calibration.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
    w = grw_weights(counts, 1.2)

    def loss():
        return F.cross_entropy(layer(x), y, weight=w)

    with torch.no_grad():
        losses = [float(loss())]
    for _ in range(steps):
        opt.zero_grad()
        loss().backward()
        opt.step()
        with torch.no_grad():
            losses.append(float(loss()))
    return losses


@pytest.mark.parametrize('scale', [0.1, 1.0, 10.0, 100.0])
def test_first_steps_of_the_recipe_lower_the_loss_at_any_logit_scale(scale, one_thread):
    losses = _first_steps(scale, condition=True)
    assert all(math.isfinite(v) for v in losses)
    assert max(losses[1:]) <= losses[0], (losses[0], max(losses))  # never climbs
    assert losses[-1] < 0.9 * losses[0], (losses[0], losses[-1])  # does not stall


def test_first_steps_control_the_plain_gradient_climbs_at_100x(one_thread):
    # the same check fails without the conditioning: the loss climbs to 15x its start
    losses = _first_steps(100.0, condition=False)
    assert max(losses[1:]) > 2 * losses[0], (losses[0], max(losses))
