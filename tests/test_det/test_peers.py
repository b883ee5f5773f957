"""The peers of DisAlign in mmdet's RoI bbox heads: NorCal (the stage-1
classifier with its foreground logits shifted, the background untouched, the
scores of mmdet's post-processing equal to the official NorCal formula), cRT's
re-initialisable cosine classifier, and the refusal of per-class sigmoid
detectors (the error names the head and what is supported)."""
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import disalign_mm.det  # noqa: F401
from disalign_mm.core import CosineLinear, norcal_adjust
from disalign_mm.det import CRTCosineLinear, NorCalCosineLinear, NorCalLinear
from disalign_mm.det.supported import check_softmax_head, softmax_bbox_heads, unsupported_reason
from disalign_mm.engine.class_counts import CountConsumer, model_consumers
from disalign_mm.engine.class_stats import ClassCounts
from tests.test_core.test_adjusted import norcal_reference
from tests.test_det.test_bbox_head import COUNTS, K, build, head_cfg


@pytest.mark.parametrize('plain,norcal', [
    (None, dict(type='NorCalLinear', gamma=0.8, class_counts=COUNTS)),
    (dict(type='CosineLinear', scale=20.0),
     dict(type='NorCalCosineLinear', scale=20.0, gamma=0.8, class_counts=COUNTS)),
])
def test_norcal_in_a_bbox_head_scores_the_official_formula(plain, norcal):
    """The stage-1 head's weights load into the NorCal head as they are; its
    class logits are the stage-1 ones with the foreground shifted (the
    background column bit for bit); mmdet's scores before NMS are NorCal's
    official formula (exp, foreground / N_c ** gamma, renormalised)."""
    stage1 = build(head_cfg(plain)).eval()
    head = build(head_cfg(norcal)).eval()
    head.load_state_dict(stage1.state_dict(), strict=True)
    assert set(head.state_dict()) == set(stage1.state_dict())  # counts are not saved
    torch.manual_seed(3)
    feats = torch.randn(7, 4, 3, 3)
    with torch.no_grad():
        z, reg = stage1(feats)
        zn, reg_n = head(feats)
    assert torch.equal(reg, reg_n)
    assert torch.equal(zn[:, -1], z[:, -1])
    torch.testing.assert_close(zn, norcal_adjust(z, COUNTS, 0.8))
    rois = torch.cat([torch.zeros(7, 1), torch.rand(7, 2) * 20, 30 + torch.rand(7, 2) * 20], 1)
    raw = head.predict_by_feat(rois=(rois, ), cls_scores=(zn, ), bbox_preds=(reg_n, ),
                               batch_img_metas=[dict(img_shape=(64, 64))],
                               rcnn_test_cfg=None)[0]
    np.testing.assert_allclose(raw.scores.double().numpy(),
                               norcal_reference(z.double().numpy(), COUNTS, 0.8), rtol=1e-5,
                               atol=1e-8)


def test_norcal_counts_errors_and_test_only():
    head = build(head_cfg(dict(type='NorCalLinear'))).eval()
    assert head.fc_cls.class_counts is None
    with pytest.raises(RuntimeError, match='NorCalLinear has no class counts: add '
                       "dict\\(type='ClassCountsHook'"):
        head(torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match='4 class counts but 5 classes'):
        head.fc_cls.set_class_counts([1, 2, 3, 4])
    head.fc_cls.set_class_counts(ClassCounts(COUNTS, source='lvis image_count'))
    assert head.fc_cls.class_counts_source == 'lvis image_count'
    head.train()
    with pytest.raises(RuntimeError, match='post-hoc second stage'):
        head(torch.randn(2, 4, 3, 3))
    # the class-count hook serves it: a consumer owned by the bbox head
    consumers = model_consumers(torch.nn.ModuleDict(dict(bbox_head=head)))
    assert [c.owner_name for c in consumers] == ['bbox_head'] and consumers[0].num_classes == K
    assert 'gamma*log(N_c)' in consumers[0].describe(ClassCounts(COUNTS))


def test_norcal_layers_register_and_keep_the_stage1_keys():
    lin = MODELS.build(dict(type='NorCalLinear', in_features=6, out_features=K + 1))
    cos = MODELS.build(dict(type='NorCalCosineLinear', in_features=6, out_features=K + 1,
                            scale=20.0))
    assert isinstance(lin, NorCalLinear) and isinstance(cos, NorCalCosineLinear)
    assert set(cos.state_dict()) == set(CosineLinear(6, K + 1).state_dict())
    assert float(cos.scale.detach()) == 20.0 and lin.gamma == 1.0


def test_crt_cosine_classifier_resets_weight_and_scale():
    layer = MODELS.build(dict(type='CRTCosineLinear', in_features=6, out_features=4, scale=20.0))
    assert isinstance(layer, CRTCosineLinear) and isinstance(layer, CosineLinear)
    with torch.no_grad():
        layer.scale.fill_(31.0)
        layer.weight.fill_(1.0)
    layer.reset_parameters()
    assert float(layer.scale.detach()) == 20.0 and layer.weight.std() > 0


def _retina_head(loss_cls):
    return MODELS.build(dict(
        type='RetinaHead', num_classes=3, in_channels=8, stacked_convs=1, feat_channels=8,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                              scales_per_octave=1, ratios=[1.0], strides=[8]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder'), loss_cls=loss_cls,
        loss_bbox=dict(type='L1Loss')))


def test_a_sigmoid_detector_stops_naming_its_head():
    """A stage 2 moved onto RetinaNet's head (its GRW loss in the head) stops
    when ClassCountsHook serves the loss: the error names RetinaHead and what
    is supported; the same for a bbox head scoring with sigmoids."""
    head = _retina_head(dict(type='GRWCrossEntropyLoss', rho=0.8))
    model = torch.nn.ModuleDict(dict(bbox_head=head))
    (consumer, ) = model_consumers(model)
    with pytest.raises(NotImplementedError) as e:
        check_softmax_head(consumer, ClassCounts([1, 2, 3]))
    msg = str(e.value)
    assert 'RetinaHead' in msg and 'per-class sigmoids' in msg and 'BBoxHead' in msg
    assert 'RetinaNet, FCOS, ATSS, RTMDet, DINO' in msg
    # the second-stage tool refuses such a detector, naming the head
    with pytest.raises(NotImplementedError, match='model.bbox_head: RetinaHead is a dense'):
        softmax_bbox_heads(model)
    sig = build(head_cfg(dict(type='NorCalLinear', class_counts=COUNTS),
                         loss=dict(type='CrossEntropyLoss', use_sigmoid=True)))
    assert 'use_sigmoid=True' in unsupported_reason(sig)
    consumers = model_consumers(torch.nn.ModuleDict(dict(bbox_head=sig)))
    with pytest.raises(NotImplementedError, match='Shared2FCBBoxHead classifies with per-class'):
        check_softmax_head(consumers[0], ClassCounts(COUNTS))
    # a softmax bbox head passes
    ok = build(head_cfg(dict(type='NorCalLinear', class_counts=COUNTS)))
    (c, ) = model_consumers(torch.nn.ModuleDict(dict(bbox_head=ok)))
    assert check_softmax_head(c, ClassCounts(COUNTS)) is None


@pytest.mark.parametrize('cfg', [
    dict(type='FCOSHead', num_classes=3, in_channels=8, stacked_convs=1, feat_channels=8,
         strides=[8], norm_cfg=None),
    dict(type='ATSSHead', num_classes=3, in_channels=8, stacked_convs=1, feat_channels=8,
         norm_cfg=None,
         anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8,
                               scales_per_octave=1, strides=[8])),
    dict(type='RTMDetHead', num_classes=3, in_channels=8, stacked_convs=1, feat_channels=8,
         norm_cfg=dict(type='BN'),
         anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8]),
         bbox_coder=dict(type='DistancePointBBoxCoder')),
    dict(type='DINOHead', num_classes=3, embed_dims=8, sync_cls_avg_factor=True,
         loss_cls=dict(type='FocalLoss', use_sigmoid=True)),
])
def test_every_named_sigmoid_detector_is_refused(cfg):
    head = MODELS.build(ConfigDict(cfg))
    reason = unsupported_reason(head)
    assert reason and cfg['type'] in reason and 'sigmoid' in reason
    consumer = CountConsumer('GRWCrossEntropyLoss bbox_head.loss_cls', object(), head,
                             'bbox_head')
    with pytest.raises(NotImplementedError, match=cfg['type']):
        check_softmax_head(consumer, ClassCounts([1, 2, 3]))


def test_the_tool_reads_standard_and_cascade_roi_heads_only():
    from disalign_mm.second_stage.dense.detection import DetectionHost
    host = DetectionHost(K, COUNTS, [0.0, 1.0])
    head = build(head_cfg())
    model = torch.nn.Module()
    model.roi_head = InstanceData()  # not an RoI head of the tool
    model.add_module('bbox', head)
    with pytest.raises(NotImplementedError, match='the tool reads the RoI outputs'):
        host.check_model(model)


def test_a_stage2_hook_on_a_sigmoid_detector_names_the_head():
    """A cRT (or DisAlign) stage 2 moved onto RetinaNet stops when the freeze
    hook starts, naming RetinaHead and what is supported, not at "no
    parameter matches" of the classifier name it cannot find."""
    from types import SimpleNamespace

    from disalign_mm.engine import DisAlignFreezeHook
    model = MODELS.build(dict(
        type='RetinaNet',
        data_preprocessor=dict(type='DetDataPreprocessor'),
        backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(3, ),
                      base_channels=8, norm_cfg=dict(type='BN')),
        neck=dict(type='FPN', in_channels=[64], out_channels=8, num_outs=1),
        bbox_head=dict(
            type='RetinaHead', num_classes=3, in_channels=8, stacked_convs=1, feat_channels=8,
            anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                  scales_per_octave=1, ratios=[1.0], strides=[32]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True), loss_bbox=dict(type='L1Loss'))))
    hook = DisAlignFreezeHook(trainable=[r'\.fc_cls\.'], reinit=[r'fc_cls'])
    with pytest.raises(NotImplementedError, match=r'model\.bbox_head: RetinaHead is a dense'
                       r'.*per-class sigmoid detectors \(RetinaNet, FCOS'):
        hook.before_run(SimpleNamespace(model=model))
