"""DisAlignCalibration against Eq. 4-5 written out by hand."""
import pytest
import torch

from disalign_mm.core import DisAlignCalibration

Z = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
X = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])


def _set(cal, alpha, beta, v=None, b=None):
    with torch.no_grad():
        cal.alpha.copy_(torch.tensor(alpha))
        cal.beta.copy_(torch.tensor(beta))
        if v is not None:
            cal.confidence.weight.copy_(torch.tensor([v]))
            cal.confidence.bias.fill_(b)


def test_matches_eq4_5_by_hand():
    cal = DisAlignCalibration(3, in_channels=2)
    _set(cal, [2.0, 0.5, 1.0], [0.1, -0.2, 0.3], v=[0.3, -0.1], b=0.2)
    out = cal(Z, X)
    # sigma(x) = sigmoid(v.x + b): sample 0: 0.3 - 0.2 + 0.2 = 0.3
    #                              sample 1: -0.3 - 0.05 + 0.2 = -0.15
    s0, s1 = torch.sigmoid(torch.tensor(0.3)), torch.sigmoid(torch.tensor(-0.15))
    s = torch.tensor([[2.0 * 2.0 + 0.1, 0.5 * -1.0 - 0.2, 1.0 * 0.5 + 0.3],
                      [2.0 * 0.0 + 0.1, 0.5 * 3.0 - 0.2, 1.0 * -2.0 + 0.3]])
    expected = torch.stack([s0 * s[0] + (1 - s0) * Z[0], s1 * s[1] + (1 - s1) * Z[1]])
    torch.testing.assert_close(out, expected)
    # a few exact numbers, computed once by hand (sigmoid(0.3) = 0.574443)
    assert out[0, 0].item() == pytest.approx(0.574443 * 4.1 + 0.425557 * 2.0, abs=1e-5)
    assert out[1, 2].item() == pytest.approx(-2.0 + 0.462570 * 0.3, abs=1e-5)


@pytest.mark.parametrize('confidence', ['input', 'constant', 'none'])
def test_identity_at_init(confidence):
    cal = DisAlignCalibration(3, in_channels=2, confidence=confidence,
                              confidence_weight_init=0.7, confidence_bias_init=-1.3)
    torch.testing.assert_close(cal(Z, X), Z, rtol=0, atol=0)


def test_alpha_init_two_is_reference_start():
    # official code: (1 + sigma * a) z + sigma * beta with a = 1 -> alpha = 2
    cal = DisAlignCalibration(3, in_channels=2, alpha_init=2.0, confidence_weight_init=0.1)
    sigma = torch.sigmoid(X @ torch.full((2, ), 0.1)).unsqueeze(1)
    torch.testing.assert_close(cal(Z, X), (1 + sigma * 1.0) * Z)


def test_only_calibration_gets_gradients():
    fc = torch.nn.Linear(2, 3)
    cal = DisAlignCalibration(3, in_channels=2)
    _set(cal, [1.5, 1.0, 0.7], [0.2, 0.0, -0.1], v=[0.3, 0.3], b=0.0)
    for p in fc.parameters():
        p.requires_grad_(False)
    feats = X.clone().requires_grad_(False)
    loss = torch.nn.functional.cross_entropy(cal(fc(feats), feats), torch.tensor([0, 2]))
    loss.backward()
    assert all(p.grad is None for p in fc.parameters())
    for name in ('alpha', 'beta', 'confidence.weight', 'confidence.bias'):
        grad = dict(cal.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_switches_are_the_ablations():
    alpha, beta = [2.0, 0.5, 1.0], [0.1, -0.2, 0.3]
    # magnitude only: margin fixed at 0 and not a parameter
    cal = DisAlignCalibration(3, in_channels=2, use_margin=False, confidence='none')
    assert [n for n, _ in cal.named_parameters()] == ['alpha']
    with torch.no_grad():
        cal.alpha.copy_(torch.tensor(alpha))
    torch.testing.assert_close(cal(Z), Z * torch.tensor(alpha))
    # margin only, constant confidence sigmoid(b)
    cal = DisAlignCalibration(3, use_magnitude=False, confidence='constant',
                              confidence_bias_init=1.0)
    assert sorted(n for n, _ in cal.named_parameters()) == ['beta', 'confidence_bias']
    with torch.no_grad():
        cal.beta.copy_(torch.tensor(beta))
    torch.testing.assert_close(cal(Z), Z + torch.sigmoid(torch.tensor(1.0)) * torch.tensor(beta))
    # the constant sigma ignores the input
    torch.testing.assert_close(cal(Z, X), cal(Z, -X))
    with pytest.raises(ValueError, match='nothing would be calibrated'):
        DisAlignCalibration(3, in_channels=2, use_magnitude=False, use_margin=False)


def test_background_logit_untouched():
    cal = DisAlignCalibration(3, in_channels=2, background_last=True)
    _set(cal, [2.0, 0.5, 3.0], [1.0, 1.0, 1.0], v=[0.5, 0.5], b=1.0)
    logits = torch.cat([Z, torch.tensor([[7.0], [-4.0]])], dim=1)
    out = cal(logits, X)
    assert out.shape == (2, 4)
    assert torch.equal(out[:, 3], logits[:, 3])
    assert not torch.allclose(out[:, :3], Z)
    with pytest.raises(ValueError, match=r'\(N, 4\).*3 classes \+ background'):
        cal(Z, X)


def test_feature_maps_give_one_sigma_per_pixel():
    torch.manual_seed(0)
    cal = DisAlignCalibration(3, in_channels=2)
    _set(cal, [2.0, 0.5, 1.0], [0.1, -0.2, 0.3], v=[0.3, -0.1], b=0.2)
    logits = torch.randn(2, 3, 4, 5)
    feats = torch.randn(2, 2, 4, 5)
    sigma = cal.sigma(feats)
    assert sigma.shape == (2, 1, 4, 5)
    assert sigma.flatten().unique().numel() == 40
    # the map result equals the vector result pixel by pixel
    flat = cal(logits.permute(0, 2, 3, 1).reshape(-1, 3), feats.permute(0, 2, 3, 1).reshape(-1, 2))
    torch.testing.assert_close(cal(logits, feats), flat.reshape(2, 4, 5, 3).permute(0, 3, 1, 2))


def test_clear_errors():
    cal = DisAlignCalibration(3, in_channels=2)
    with pytest.raises(ValueError, match='check num_classes'):
        cal(torch.zeros(2, 4), X)
    with pytest.raises(ValueError, match='needs the classifier'):
        cal(Z)
    with pytest.raises(ValueError, match='in_channels'):
        DisAlignCalibration(3)
    with pytest.raises(ValueError, match='confidence must be one of'):
        DisAlignCalibration(3, in_channels=2, confidence='sometimes')


@pytest.mark.parametrize('confidence', ['input', 'constant'])
def test_reset_parameters_restores_the_configured_start_in_place(confidence):
    cal = DisAlignCalibration(3, in_channels=2, alpha_init=2.0, beta_init=0.5,
                              confidence=confidence, confidence_weight_init=0.1,
                              confidence_bias_init=-1.0)
    start = {k: v.clone() for k, v in cal.state_dict().items()}
    params = list(cal.parameters())
    with torch.no_grad():
        for p in params:
            p.normal_()  # what a host's init_cfg would do
    cal.reset_parameters()
    assert list(cal.parameters()) == params  # same tensors: an optimizer keeps them
    for k, v in cal.state_dict().items():
        assert torch.equal(v, start[k]), k
    assert cal.alpha.tolist() == [2.0] * 3 and cal.beta.tolist() == [0.5] * 3
