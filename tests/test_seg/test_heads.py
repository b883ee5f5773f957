"""DisAlign decode heads: forward, per-pixel confidence, loss, predict,
checkpoint compatibility with the plain mmseg heads."""
import json

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.decode_heads import DepthwiseSeparableASPPHead, FCNHead, PSPHead
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import disalign_mm.seg  # noqa: F401
from disalign_mm.core import CalibratedConv2d, DisAlignCalibration, calibrate
from disalign_mm.seg import DisAlignFCNHead, DisAlignHeadMixin, disalign_head_class
from tests.calibration_keys import calibration_keys

K = 5
FCN = dict(in_channels=6, channels=4, num_convs=1, concat_input=False, num_classes=K,
           dropout_ratio=0.0, norm_cfg=dict(type='BN'))
COUNTS = [50., 20., 10., 5., 1.]


def fcn_cfg(**kw):
    cfg = dict(type='DisAlignFCNHead', **FCN,
               loss_decode=dict(type='SegGRWCrossEntropyLoss', rho=0.5,
                                class_counts=COUNTS))
    cfg.update(kw)
    return cfg


def samples(labels):
    out = []
    for lab in labels:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=lab[None].long())
        out.append(s)
    return out


def test_state_dict_is_the_plain_heads_plus_calibration():
    torch.manual_seed(0)
    plain = FCNHead(**FCN)
    head = MODELS.build(fcn_cfg())
    plain_keys, keys = set(plain.state_dict()), set(head.state_dict())
    assert plain_keys < keys
    assert sorted(keys - plain_keys) == calibration_keys('conv_seg.calibration.')
    assert isinstance(head.conv_seg, torch.nn.Conv2d)
    assert isinstance(head.conv_seg.calibration, DisAlignCalibration)
    # a plain (stage-1) state dict loads with no surgery, only the
    # calibration is missing; at init DisAlign reproduces the plain head
    missing, unexpected = head.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == sorted(keys - plain_keys) and unexpected == []
    plain.eval(), head.eval()
    x = [torch.randn(2, 6, 5, 7)]
    torch.testing.assert_close(head(x), plain(x), rtol=0, atol=0)


def test_init_weights_keeps_the_configured_calibration():
    head = MODELS.build(fcn_cfg(calibration=dict(
        alpha_init=2.0, beta_init=0.5, confidence_weight_init=0.1, confidence_bias_init=-1.0)))
    head.init_weights()
    cal = head.conv_seg.calibration
    assert torch.equal(cal.alpha, torch.full((K, ), 2.0))
    assert torch.equal(cal.beta, torch.full((K, ), 0.5))
    assert torch.equal(cal.confidence.weight, torch.full((1, 4), 0.1))
    assert torch.equal(cal.confidence.bias, torch.tensor([-1.0]))
    # the classifier itself got mmseg's Normal(0, 0.01) init, bias 0
    assert head.conv_seg.bias.abs().max() == 0
    assert 0 < head.conv_seg.weight.std() < 0.05


def test_confidence_is_per_pixel():
    head = MODELS.build(fcn_cfg()).eval()
    cal = head.conv_seg.calibration
    with torch.no_grad():
        cal.alpha.copy_(torch.tensor([1.5, 0.5, 2.0, 1.0, 3.0]))
        cal.beta.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0, 1.0]))
        cal.confidence.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.0]]))
        cal.confidence.bias.fill_(0.25)
    feat = torch.randn(2, 4, 3, 5)
    out = head.cls_seg(feat)
    z = F.conv2d(feat, head.conv_seg.weight, head.conv_seg.bias)
    sigma = torch.sigmoid((feat * torch.tensor([1.0, -2.0, 0.5, 0.0]).view(1, 4, 1, 1)
                           ).sum(1, keepdim=True) + 0.25)
    assert sigma.shape == (2, 1, 3, 5) and sigma.std() > 0.1  # varies by pixel
    expect = sigma * (cal.alpha.view(1, K, 1, 1) * z + cal.beta.view(1, K, 1, 1)) \
        + (1 - sigma) * z
    torch.testing.assert_close(out, expect)
    # a single pixel's output depends on that pixel's feature only
    feat2 = feat.clone()
    feat2[0, :, 1, 2] += 3.0
    diff = (head.cls_seg(feat2) - out).abs().sum(1)
    assert diff[0, 1, 2] > 0 and diff.sum() == diff[0, 1, 2]


def test_loss_is_pixel_averaged_grw_and_ignores_255():
    torch.manual_seed(1)
    head = MODELS.build(fcn_cfg())
    head.train()
    x = [torch.randn(2, 6, 4, 4)]
    labels = torch.randint(0, K, (2, 8, 8))
    labels[0, :2] = 255
    losses = head.loss(x, samples(labels), {})
    assert set(losses) == {'loss_grw', 'acc_seg'}
    logits = F.interpolate(head(x), size=(8, 8), mode='bilinear', align_corners=False)
    w = torch.tensor(COUNTS).pow(-0.5)
    w = w * K / w.sum()
    valid = labels != 255
    ce = F.cross_entropy(logits, labels.clamp(max=K - 1), reduction='none')
    expect = (ce * w[labels.clamp(max=K - 1)] * valid).sum() / valid.sum()
    torch.testing.assert_close(losses['loss_grw'], expect)
    assert valid.sum() == 2 * 64 - 16

    # ignored pixels do not contribute: no gradient flows to their logits
    logits = logits.detach().requires_grad_(True)
    head.loss_decode(logits, labels, ignore_index=255).backward()
    assert logits.grad[0, :, :2].abs().max() == 0
    assert logits.grad[0, :, 2:].abs().max() > 0


def test_predict_shape():
    head = MODELS.build(fcn_cfg()).eval()
    metas = [dict(img_shape=(16, 20), pad_shape=(16, 24))]
    out = head.predict([torch.randn(1, 6, 2, 3)], metas, {})
    assert out.shape == (1, K, 16, 24)


def test_deeplabv3plus_head_forward_and_loss():
    cfg = dict(type='DisAlignDepthwiseSeparableASPPHead', in_channels=8, channels=4,
               dilations=(1, 2), c1_in_channels=3, c1_channels=2, num_classes=K,
               dropout_ratio=0.1, norm_cfg=dict(type='BN'),
               loss_decode=dict(type='SegGRWCrossEntropyLoss', class_counts=COUNTS))
    head = MODELS.build(cfg)
    assert isinstance(head, DepthwiseSeparableASPPHead)
    plain_keys = set(DepthwiseSeparableASPPHead(
        **{k: v for k, v in cfg.items() if k not in ('type', 'loss_decode')}).state_dict())
    assert set(head.state_dict()) - plain_keys == set(calibration_keys('conv_seg.calibration.'))
    inputs = [torch.randn(2, 3, 8, 8), torch.randn(2, 8, 4, 4)]
    assert head(inputs).shape == (2, K, 8, 8)
    labels = torch.randint(0, K, (2, 16, 16))
    loss = head.loss(inputs, samples(labels), {})['loss_grw']
    loss.backward()
    assert head.conv_seg.calibration.alpha.grad.abs().sum() > 0


def test_any_decode_head_through_the_generic_builder():
    head = MODELS.build(dict(type='DisAlignHead', base_type='PSPHead', in_channels=8,
                             channels=4, pool_scales=(1, 2), num_classes=K,
                             norm_cfg=dict(type='BN')))
    assert isinstance(head, PSPHead) and isinstance(head, DisAlignHeadMixin)
    assert type(head).__name__ == 'DisAlignPSPHead'
    assert disalign_head_class(PSPHead) is type(head)
    assert disalign_head_class(FCNHead) is DisAlignFCNHead
    assert head.eval()([torch.randn(1, 8, 4, 4)]).shape == (1, K, 4, 4)
    with pytest.raises(TypeError, match='BaseDecodeHead'):
        disalign_head_class(torch.nn.Linear)
    with pytest.raises(KeyError, match='NoSuchHead'):
        MODELS.build(dict(type='DisAlignHead', base_type='NoSuchHead'))


def test_conv_seg_replacement_rejects_other_layers():
    head = torch.nn.Module()
    head.conv_seg = torch.nn.Conv2d(4, 3, 3)
    with pytest.raises(TypeError, match='1x1'):
        calibrate(head, 'conv_seg')
    head.conv_seg = torch.nn.Conv2d(4, 3, 1)
    assert isinstance(calibrate(head, 'conv_seg'), CalibratedConv2d)
    with pytest.raises(TypeError, match='twice'):
        calibrate(head, 'conv_seg')


def test_counts_file_with_wrong_length_is_a_clear_error(tmp_path):
    path = tmp_path / 'counts.json'
    path.write_text(json.dumps({'format': 'disalign_mm/class-counts@1', 'classes': None,
                                'counts': [5, 4, 3, 2], 'unit': 'pixels'}))
    with pytest.raises(ValueError, match=r'4 classes.*counts\.json.*num_classes=5'):
        MODELS.build(fcn_cfg(loss_decode=dict(type='SegGRWCrossEntropyLoss',
                                              class_counts_file=str(path))))
