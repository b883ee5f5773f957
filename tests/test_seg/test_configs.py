"""The shipped ADE20K configs, at full size (models built, not trained)."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import disalign_mm.seg  # noqa: F401
from tests.calibration_keys import calibration_keys

CFG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                   'configs', 'ade20k')
CALIB = set(calibration_keys('decode_head.conv_seg.calibration.'))
FCN, ASPP = 'DisAlignFCNHead', 'DisAlignDepthwiseSeparableASPPHead'
# (stage-1 name = mmseg's, mmseg folder, DisAlign head, backbone type, depth):
# the paper's Table 15
MODELS_ = [('fcn_r50-d8', 'fcn', FCN, 'ResNetV1c', 50),
           ('fcn_r101-d8', 'fcn', FCN, 'ResNetV1c', 101),
           ('resnest_s101-d8_fcn', 'resnest', FCN, 'ResNeSt', 101),
           ('deeplabv3plus_r50-d8', 'deeplabv3plus', ASPP, 'ResNetV1c', 50),
           ('deeplabv3plus_r101-d8', 'deeplabv3plus', ASPP, 'ResNetV1c', 101),
           ('resnest_s101-d8_deeplabv3plus', 'resnest', ASPP, 'ResNeSt', 101)]


def plain(cfg):
    """A config dict without the ``_scope_`` keys mmengine adds to the parts
    inherited from another package (``mmseg::``)."""
    if isinstance(cfg, dict):
        return {k: plain(v) for k, v in cfg.items() if k != '_scope_'}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(plain(v) for v in cfg)
    return cfg


def test_config_set_is_complete():
    import glob
    names = {osp.basename(p) for p in glob.glob(osp.join(CFG_DIR, '*.py'))}
    assert names == {n for stem, *_ in MODELS_ for n in (
        f'{stem}_4xb4-160k_ade20k-512x512.py', f'disalign_{stem}_8xb4-8k_ade20k-512x512.py',
        # the peers beside every DisAlign config (docs/recipes.md)
        f'crt_{stem}_8xb4-8k_ade20k-512x512.py', f'logit-adjust_{stem}_ade20k-512x512.py')}


@pytest.mark.parametrize('stem,folder,head,backbone,depth', MODELS_)
def test_stage1_is_mmseg_and_stage2_changes_only_the_head(stem, folder, head, backbone, depth):
    s1 = Config.fromfile(osp.join(CFG_DIR, f'{stem}_4xb4-160k_ade20k-512x512.py'))
    s2 = Config.fromfile(osp.join(CFG_DIR, f'disalign_{stem}_8xb4-8k_ade20k-512x512.py'))
    mm = Config.fromfile(osp.join(osp.dirname(osp.dirname(__import__('mmseg').__file__)),
                                  'mmseg', '.mim', 'configs', folder,
                                  f'{stem}_4xb4-160k_ade20k-512x512.py'))
    for key in ('model', 'train_cfg', 'train_dataloader', 'val_dataloader', 'optim_wrapper',
                'param_scheduler'):
        assert plain(s1[key]) == plain(mm[key]), key
    assert s1.val_evaluator.type == 'HeadBodyTailIoUMetric'
    assert s1.model.backbone.type == backbone and s1.model.backbone.depth == depth
    assert s1.train_cfg.max_iters == 160000

    # the model is stage 1's apart from the decode head (and no auxiliary head)
    for key in set(s1.model) | set(s2.model):
        if key not in ('decode_head', 'auxiliary_head'):
            assert plain(s2.model.get(key)) == plain(s1.model.get(key)), key
    d1, d2 = plain(s1.model.decode_head), plain(s2.model.decode_head)
    assert {k for k in set(d1) | set(d2) if d1.get(k) != d2.get(k)} == {'type', 'loss_decode'}
    assert s2.model.decode_head.type == head
    # the pixel ratios of Table 16 come from ClassCountsHook(source='ade20k')
    assert plain(s2.model.decode_head.loss_decode) == dict(type='SegGRWCrossEntropyLoss', rho=0.3)
    assert s2.model.auxiliary_head is None
    # paper B.2: stage 1's protocol (data, augmentation, optimizer, poly
    # schedule) for 8k iterations at batch 32 (8 GPUs x 4)
    assert s2.train_cfg.max_iters == 8000
    assert plain(s2.param_scheduler) == [dict(plain(s1.param_scheduler[0]), end=8000)]
    assert s2.auto_scale_lr.base_batch_size == 32 == 8 * s2.train_dataloader.batch_size
    assert s2.optim_wrapper == s1.optim_wrapper
    assert s2.train_dataloader == s1.train_dataloader
    assert s2.load_from is None and s2.resume is False
    assert s2.custom_hooks == [dict(type='DisAlignFreezeHook'),
                               dict(type='ClassCountsHook', source='ade20k')]
    assert s2.model_wrapper_cfg == dict(find_unused_parameters=True)

    init_default_scope('mmseg')
    keys1 = set(MODELS.build(s1.model).state_dict())
    m2 = MODELS.build(s2.model)
    assert type(m2.decode_head).__name__ == head
    keys2 = set(m2.state_dict())
    # a stage-1 checkpoint (e.g. the official one) loads with no key surgery
    assert keys2 - keys1 == CALIB
    assert keys1 - keys2 == {k for k in keys1 if k.startswith('auxiliary_head.')}
    assert m2.decode_head.conv_seg.out_channels == 150
