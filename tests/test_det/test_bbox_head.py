"""DisAlign classifiers in mmdet's RoI bbox heads: forward, loss, predict,
checkpoint compatibility, the untouched background logit."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.config import ConfigDict

import disalign_mm.det  # noqa: F401
from disalign_mm.core import CosineLinear, DisAlignCalibration, grw_weights
from disalign_mm.det import DisAlignCosineLinear, DisAlignLinear
from tests.calibration_keys import calibration_keys

K = 5
COUNTS = [150, 120, 40, 3, 15]
CALIB_KEYS = set(calibration_keys('fc_cls.calibration.'))


def head_cfg(predictor=None, loss=None):
    cfg = dict(
        type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=12, roi_feat_size=3,
        num_classes=K,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                        target_stds=[0.1, 0.1, 0.2, 0.2]),
        reg_class_agnostic=False,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0))
    if predictor is not None:
        cfg['cls_predictor_cfg'] = predictor
    if loss is not None:
        cfg['loss_cls'] = loss
    return cfg


def build(cfg):
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def grw_loss(**kw):
    return dict(type='GRWCrossEntropyLoss', rho=0.8, background_weight=1.0,
                class_counts=COUNTS, **kw)


def randomize(calib: DisAlignCalibration, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        calib.alpha.copy_(torch.rand(calib.alpha.shape, generator=g) * 2 + 0.5)
        calib.beta.copy_(torch.randn(calib.beta.shape, generator=g))
        calib.confidence.weight.copy_(torch.randn(calib.confidence.weight.shape, generator=g))
        calib.confidence.bias.fill_(0.3)


@pytest.fixture
def rois_feats():
    torch.manual_seed(3)
    return torch.randn(7, 4, 3, 3)


@pytest.mark.parametrize('stage1, stage2, cls', [
    (None, dict(type='DisAlignLinear'), DisAlignLinear),
    (dict(type='CosineLinear', scale=20.0, learn_scale=False),
     dict(type='DisAlignCosineLinear', scale=20.0, learn_scale=False), DisAlignCosineLinear),
])
def test_stage1_checkpoint_loads_and_identity(stage1, stage2, cls, rois_feats):
    s1 = build(head_cfg(stage1))
    s2 = build(head_cfg(stage2))
    assert type(s2.fc_cls) is cls
    # the classifier keeps its name and keys: a stage-1 state dict loads as is
    keys1, keys2 = set(s1.state_dict()), set(s2.state_dict())
    assert keys1 < keys2 and keys2 - keys1 == CALIB_KEYS
    res = s2.load_state_dict(s1.state_dict(), strict=False)
    assert set(res.missing_keys) == CALIB_KEYS and res.unexpected_keys == []
    # init_weights ran mmdet's Normal override over fc_cls (confidence
    # layer included) and then reset the calibration: identity start
    calib = s2.fc_cls.calibration
    assert torch.equal(calib.alpha, torch.ones(K)) and torch.equal(calib.beta, torch.zeros(K))
    assert torch.equal(calib.confidence.weight, torch.zeros(1, 12))
    s1.eval(), s2.eval()
    cls1, reg1 = s1(rois_feats)
    cls2, reg2 = s2(rois_feats)
    assert cls2.shape == (7, K + 1)
    torch.testing.assert_close(cls2, cls1, rtol=0, atol=0)
    torch.testing.assert_close(reg2, reg1, rtol=0, atol=0)


def test_stage1_cosine_head_is_core_cosine(rois_feats):
    head = build(head_cfg(dict(type='CosineLinear', scale=20.0, learn_scale=False)))
    assert type(head.fc_cls) is CosineLinear
    head.eval()
    x = head.shared_fcs[1](F.relu(head.shared_fcs[0](rois_feats.flatten(1)))).relu()
    cls_score, _ = head(rois_feats)
    expect = 20.0 * F.normalize(x, dim=1) @ F.normalize(head.fc_cls.weight, dim=1).t()
    torch.testing.assert_close(cls_score, expect)
    assert cls_score.abs().max() <= 20.0 + 1e-4


@pytest.mark.parametrize('predictor', [
    dict(type='DisAlignLinear'),
    dict(type='DisAlignCosineLinear', scale=20.0, learn_scale=False)])
def test_forward_calibrates_foreground_only(predictor, rois_feats):
    head = build(head_cfg(predictor))
    head.eval()
    randomize(head.fc_cls.calibration)
    feats = {}
    head.fc_cls.register_forward_hook(lambda m, i, o: feats.update(x=i[0], out=o))
    cls_score, _ = head(rois_feats)
    x = feats['x']
    bare = torch.nn.Linear if isinstance(head.fc_cls, torch.nn.Linear) else CosineLinear
    raw = bare.forward(head.fc_cls, x)  # the classifier alone
    calib = head.fc_cls.calibration
    sigma = torch.sigmoid(x @ calib.confidence.weight.t() + calib.confidence.bias)
    fg = raw[:, :K]
    expect_fg = sigma * (calib.alpha * fg + calib.beta) + (1 - sigma) * fg
    torch.testing.assert_close(cls_score[:, :K], expect_fg)
    # background logit (last, mmdet's convention) passes through untouched
    assert torch.equal(cls_score[:, K], raw[:, K])
    assert not torch.allclose(cls_score[:, :K], fg)


def test_loss_is_grw_with_sampler_label_weights(rois_feats):
    head = build(head_cfg(dict(type='DisAlignLinear'), grw_loss()))
    w = grw_weights(COUNTS, 0.8)
    # pinned: (1/r)^0.8 normalised to mean 1, for image counts 150/120/40/3/15
    torch.testing.assert_close(
        w, torch.tensor([0.14599, 0.17452, 0.42029, 3.33808, 0.92113]), atol=1e-5, rtol=0)
    cls_score, bbox_pred = head(rois_feats)
    labels = torch.tensor([0, 3, 5, 5, 1, 4, 2])  # 5 = background
    label_weights = torch.tensor([1., 1., 1., 0., 1., 1., 1.])  # RoI 3 ignored
    bbox_targets = torch.zeros(7, 4)
    bbox_weights = torch.zeros(7, 4)
    rois = torch.cat([torch.zeros(7, 1), torch.tensor([[0., 0., 10., 10.]]).repeat(7, 1)], 1)
    losses = head.loss(cls_score, bbox_pred, rois, labels, label_weights, bbox_targets,
                       bbox_weights)
    full_w = torch.cat([w, torch.ones(1)])
    keep = label_weights > 0
    expect = F.cross_entropy(cls_score[keep], labels[keep], weight=full_w)
    torch.testing.assert_close(losses['loss_cls'], expect)
    # 'weighted' averaging divides by sum_i w_{y_i} s_i, not by mmdet's avg_factor
    ce = F.cross_entropy(cls_score, labels, reduction='none')
    manual = (full_w[labels] * label_weights * ce).sum() / (full_w[labels] * label_weights).sum()
    torch.testing.assert_close(losses['loss_cls'], manual)
    assert 'acc' in losses
    # gradients reach the calibration
    losses['loss_cls'].backward()
    assert head.fc_cls.calibration.alpha.grad.abs().sum() > 0
    assert head.fc_cls.calibration.beta.grad.abs().sum() > 0


def test_predict_uses_calibrated_scores(rois_feats):
    head = build(head_cfg(dict(type='DisAlignLinear')))
    head.eval()
    # 7 disjoint boxes, so that NMS keeps every one
    x1 = torch.arange(7.) * 18
    boxes = torch.stack([x1, torch.full_like(x1, 10), x1 + 16, torch.full_like(x1, 40)], 1)
    rois = torch.cat([torch.zeros(7, 1), boxes], 1)
    metas = [dict(img_shape=(96, 128), scale_factor=(1., 1.))]
    test_cfg = ConfigDict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                          max_per_img=100)
    with torch.no_grad():
        cls_score, bbox_pred = head(rois_feats)
        res0 = head.predict_by_feat((rois, ), (cls_score, ), (bbox_pred, ), metas,
                                    rcnn_test_cfg=test_cfg)[0]
        # a large margin on class 3 (the rare one) makes it win every RoI
        head.fc_cls.calibration.beta[3] = 50.0
        cls_score, bbox_pred = head(rois_feats)
        res1 = head.predict_by_feat((rois, ), (cls_score, ), (bbox_pred, ), metas,
                                    rcnn_test_cfg=test_cfg)[0]
    assert len(res0) == len(res1) == 7 * K  # score_thr 0: every class of every RoI
    top0 = res0.labels[res0.scores.argsort(descending=True)[:7]]
    top1 = res1.labels[res1.scores.argsort(descending=True)[:7]]
    assert top0.tolist() != [3] * 7 and top1.tolist() == [3] * 7
    assert res1.scores.max() <= 1.0


def test_bad_predictor_sizes():
    with pytest.raises(ValueError, match='classes to calibrate'):
        DisAlignLinear(8, 1)  # only the background
    with pytest.raises(ValueError, match='in_channels must be positive'):
        DisAlignLinear(0, 6)


def test_grw_count_mismatch_is_clear(rois_feats):
    head = build(head_cfg(dict(type='DisAlignLinear'), grw_loss()))
    head.loss_cls.set_class_counts(COUNTS[:4])
    cls_score, bbox_pred = head(rois_feats)
    with pytest.raises(ValueError, match='predicts 6 classes but the class counts describe 4'):
        head.loss_cls(cls_score, torch.zeros(7, dtype=torch.long))
