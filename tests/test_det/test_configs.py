"""The shipped LVIS configs: stage 1 is mmdet's own (or built from mmdet's
pieces for Cascade), stage 2 = stage 1 + only the DisAlign changes, on the
plain LVIS set with the official schedule (docs/recipes.md), evaluated by
LongTailLVISMetric (LVISMetric + per-category AP)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from tests.test_det.fixtures import CONFIGS

VERSIONS = {'v1': ('ms-1x', 1203), 'v0.5': ('ms-2x', 1230)}
ARCHS = ['mask-rcnn_r50_fpn', 'mask-rcnn_r101_fpn', 'mask-rcnn_x101-32x4d_fpn',
         'cascade-mask-rcnn_r50_fpn']
CASES = [(v, a, c) for v in VERSIONS for a in ARCHS for c in (False, True)]


def names(version, arch, cosine):
    sched, _ = VERSIONS[version]
    cos = '_cosine' if cosine else ''
    return (f'{arch}{cos}_sample1e-3_{sched}_lvis-{version}.py',
            f'disalign_{arch}{cos}_ms-9k_lvis-{version}.py')


def mmdet_config(rel):
    import mmdet
    return Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', rel))


def plain(cfg):
    """A config value as plain dicts/lists, without mmengine's ``_scope_``
    marks (set on values that come from another package's configs)."""
    if hasattr(cfg, 'to_dict'):
        cfg = cfg.to_dict()
    if isinstance(cfg, dict):
        return {k: plain(v) for k, v in cfg.items() if k != '_scope_'}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(plain(v) for v in cfg)
    return cfg


def load(version, name):
    return Config.fromfile(osp.join(CONFIGS, f'lvis_{version.replace(".", "")}', name))


def test_config_set_is_complete():
    for v in VERSIONS:
        folder = osp.join(CONFIGS, f'lvis_{v.replace(".", "")}')
        files = {osp.basename(p) for p in glob.glob(osp.join(folder, '*.py'))}
        expected = {n for a in ARCHS for c in (False, True) for n in names(v, a, c)}
        # beside every DisAlign config, its peers (docs/recipes.md)
        expected |= {'crt_' + n[len('disalign_'):].replace('_ms-9k_', '_cas_ms-9k_')
                     for n in set(expected) if n.startswith('disalign_')}
        expected |= {'norcal_' + n[len('disalign_'):].replace('ms-9k_', '')
                     for n in set(expected) if n.startswith('disalign_')}
        assert files == expected


def _heads(cfg):
    h = cfg.model.roi_head.bbox_head
    return list(h) if isinstance(h, list) else [h]


@pytest.mark.parametrize('version, arch, cosine', CASES)
def test_stage1_and_stage2(version, arch, cosine):
    _, ncls = VERSIONS[version]
    n1, n2 = names(version, arch, cosine)
    s1, s2 = load(version, n1), load(version, n2)
    for cfg in (s1, s2):
        assert cfg.custom_imports.imports == ['disalign_mm.det']
        assert cfg.model.roi_head.mask_head.num_classes == ncls
        assert cfg.model.test_cfg.rcnn.score_thr == 0.0001
        assert cfg.model.test_cfg.rcnn.max_per_img == 300
    # stage 1 evaluates with mmdet's LVISMetric; stage 2 with the same settings
    # through LongTailLVISMetric, which returns what LVISMetric does and also
    # writes the per-category AP (tests/test_det/test_metrics.py)
    for key in ('val_evaluator', 'test_evaluator'):
        assert s1[key].type == 'LVISMetric', key
        assert plain(s2[key]) == dict(plain(s1[key]), type='LongTailLVISMetric'), key
        assert s1[key].metric == ['bbox', 'segm'], key
    heads1, heads2 = _heads(s1), _heads(s2)
    assert len(heads1) == len(heads2) == (3 if arch.startswith('cascade') else 1)
    for h1, h2 in zip(heads1, heads2):
        assert h1.num_classes == h2.num_classes == ncls
        p1 = h1.get('cls_predictor_cfg', dict(type='Linear'))
        if cosine:
            # the official cosine classifier: learnable scale, starting at 20
            assert p1 == dict(type='CosineLinear', scale=20.0)
            assert h2.cls_predictor_cfg == dict(p1, type='DisAlignCosineLinear')
        else:
            assert p1['type'] == 'Linear'
            assert h2.cls_predictor_cfg == dict(type='DisAlignLinear')
        assert h1.loss_cls.type == 'CrossEntropyLoss'
        assert plain(h2.loss_cls) == dict(type='GRWCrossEntropyLoss', rho=0.8,
                                          background_weight=1.0)
    # the model is stage 1's except the classifier layer and its loss
    m1, m2 = plain(s1.model), plain(s2.model)
    for m in (m1, m2):
        for h in (m['roi_head']['bbox_head'] if isinstance(m['roi_head']['bbox_head'], list)
                  else [m['roi_head']['bbox_head']]):
            h.pop('cls_predictor_cfg', None)
            h.pop('loss_cls')
    assert m1 == m2
    # data, evaluation and test settings are stage 1's
    for key in ('val_dataloader', 'test_dataloader', 'test_cfg', 'val_cfg'):
        assert plain(s1[key]) == plain(s2[key]), key
    # instance sampling: stage 1's training set without its repeat-factor
    # wrapper (GRW re-balances; paper C.2, the official stage 2)
    assert s1.train_dataloader.dataset.type == 'ClassBalancedDataset'
    assert plain(s2.train_dataloader.dataset) == plain(s1.train_dataloader.dataset.dataset)
    assert s2.train_dataloader.batch_size == 2  # x 8 GPUs = 16 images
    assert s2.auto_scale_lr.base_batch_size == 16
    assert plain(s2.train_dataloader.sampler) == dict(type='InfiniteSampler', shuffle=True)
    assert plain(s2.train_dataloader.batch_sampler) == plain(s1.train_dataloader.batch_sampler)
    # the official schedule: 9k iterations at lr 0.02, warm-up 1000, step 8k
    assert s2.train_cfg == dict(type='IterBasedTrainLoop', max_iters=9000, val_interval=9000)
    opt = s2.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 0.02, 0.9, 1e-4)
    assert plain(s2.param_scheduler) == [
        dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
        dict(type='MultiStepLR', by_epoch=False, begin=0, end=9000, milestones=[8000])]
    assert [h['type'] for h in s2.custom_hooks] == ['DisAlignFreezeHook', 'ClassCountsHook']
    assert s2.custom_hooks[0] == dict(type='DisAlignFreezeHook')  # calibration only
    assert s2.custom_hooks[1].source == dict(type='lvis', count='image_count')
    assert s2.model_wrapper_cfg == dict(find_unused_parameters=True)
    assert s2.load_from is None and s2.resume is False


@pytest.mark.parametrize('version', list(VERSIONS))
def test_stage1_mask_rcnn_is_mmdets(version):
    """Stage-1 Mask R-CNN = mmdet's LVIS config (so mmdet's model-zoo
    checkpoints are stage-1 models); Cascade uses mmdet's cascade model."""
    for arch in ARCHS[:3]:
        n1, _ = names(version, arch, False)
        ours = load(version, n1)
        theirs = mmdet_config(f'lvis/{n1}')
        assert plain(ours.model) == plain(theirs.model)
        assert plain(ours.train_dataloader) == plain(theirs.train_dataloader)
    cascade = load(version, names(version, ARCHS[3], False)[0])
    base = mmdet_config('cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py')
    assert cascade.model.roi_head.stage_loss_weights == base.model.roi_head.stage_loss_weights
    for h, hb in zip(cascade.model.roi_head.bbox_head, base.model.roi_head.bbox_head):
        assert dict(plain(h), num_classes=80) == plain(hb)
    lvis_mrcnn = mmdet_config(f'lvis/{names(version, ARCHS[0], False)[0]}')
    assert plain(cascade.train_dataloader) == plain(lvis_mrcnn.train_dataloader)
    assert plain(cascade.train_cfg) == plain(lvis_mrcnn.train_cfg)
    assert plain(cascade.model.test_cfg.rcnn) == plain(lvis_mrcnn.model.test_cfg.rcnn)
