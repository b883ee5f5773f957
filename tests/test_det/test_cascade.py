"""Cascade Mask R-CNN: every stage calibrated, losses per stage, and the
test-time average over stages made of the calibrated logits."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.testing import demo_mm_inputs, demo_mm_proposals

import disalign_mm.det  # noqa: F401
from disalign_mm.core import CosineLinear
from disalign_mm.det import DisAlignCosineLinear, DisAlignLinear, grw_bbox_heads
from tests.calibration_keys import calibration_keys
from tests.test_det.fixtures import IMAGE_COUNT, NUM_CLASSES, load_config, tiny_options

V = 'v1'


def build(name, lvis_data):
    cfg = load_config(V, name, tiny_options(lvis_data, V, cascade=True,
                                            repeat_factor=not name.startswith('disalign_')))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def randomize_calibrations(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for head in model.roi_head.bbox_head:
            c = head.fc_cls.calibration
            c.alpha.copy_(torch.rand(c.alpha.shape, generator=g) + 0.5)
            c.beta.copy_(torch.randn(c.beta.shape, generator=g))
            c.confidence.weight.copy_(torch.randn(c.confidence.weight.shape, generator=g))


@pytest.mark.slow  # builds two Cascade Mask R-CNN models per case
@pytest.mark.parametrize('stage1, stage2, cls', [
    ('cascade-mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py',
     'disalign_cascade-mask-rcnn_r50_fpn_ms-9k_lvis-v1.py', DisAlignLinear),
    ('cascade-mask-rcnn_r50_fpn_cosine_sample1e-3_ms-1x_lvis-v1.py',
     'disalign_cascade-mask-rcnn_r50_fpn_cosine_ms-9k_lvis-v1.py', DisAlignCosineLinear),
])
def test_every_stage_calibrated_and_average_consistent(stage1, stage2, cls, lvis_data):
    m1 = build(stage1, lvis_data).eval()
    m2 = build(stage2, lvis_data).eval()
    heads = [h for _, h in grw_bbox_heads(m2)]
    assert len(heads) == 3 and heads == list(m2.roi_head.bbox_head)
    assert all(type(h.fc_cls) is cls for h in heads)
    res = m2.load_state_dict(m1.state_dict(), strict=False)
    assert res.unexpected_keys == []
    assert sorted(res.missing_keys) == sorted(
        k for i in range(3)
        for k in calibration_keys(f'roi_head.bbox_head.{i}.fc_cls.calibration.'))

    packed = demo_mm_inputs(2, [[3, 96, 128], [3, 96, 128]], num_items=[3, 2],
                            num_classes=NUM_CLASSES, with_mask=True)
    data = m2.data_preprocessor(packed, False)
    with torch.no_grad():
        x = m2.extract_feat(data['inputs'])
        metas = [s.metainfo for s in data['data_samples']]
        proposals = demo_mm_proposals([(3, 128, 96)] * 2, 20)  # (_, w, h)
        num = tuple(len(p) for p in proposals)
        rois = bbox2roi([p.bboxes for p in proposals])

        # identity at the start: stage 2 predicts exactly what stage 1 does
        _, s1_scores, _ = m1.roi_head._refine_roi(x, rois, metas, num)
        _, s2_scores, _ = m2.roi_head._refine_roi(x, rois, metas, num)
        for a, b in zip(s1_scores, s2_scores):
            torch.testing.assert_close(a, b, rtol=0, atol=0)

        # calibrated: the averaged score is the mean of the calibrated logits
        randomize_calibrations(m2)
        outs = []
        hooks = [h.fc_cls.register_forward_hook(lambda m, i, o: outs.append((i[0], o)))
                 for h in heads]
        _, avg, _ = m2.roi_head._refine_roi(x, rois, metas, num)
        for hk in hooks:
            hk.remove()
    assert len(outs) == 3
    mean = sum(o for _, o in outs) / 3.0
    torch.testing.assert_close(torch.cat(avg), mean)
    for head, (feat, out) in zip(heads, outs):
        bare = CosineLinear if isinstance(head.fc_cls, CosineLinear) else torch.nn.Linear
        raw = bare.forward(head.fc_cls, feat)  # the classifier alone
        assert torch.equal(out[:, -1], raw[:, -1])  # background untouched
        assert not torch.allclose(out[:, :-1], raw[:, :-1])  # every stage calibrated
    assert not torch.allclose(torch.cat(avg), torch.cat(s1_scores))

    # training: every stage has a GRW loss fed by the same counts
    for h in heads:
        h.loss_cls.set_class_counts(IMAGE_COUNT)
    m2.train()
    losses = m2.loss(data['inputs'], data['data_samples'])
    for i in range(3):
        assert torch.isfinite(losses[f's{i}.loss_cls'])
    total = sum(v for k, v in losses.items() if 'loss_cls' in k and k.startswith('s'))
    total.backward()
    for h in heads:
        assert h.fc_cls.calibration.alpha.grad is not None
        assert h.fc_cls.calibration.alpha.grad.abs().sum() > 0
