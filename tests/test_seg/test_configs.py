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
MODELS_ = [('fcn_r50-d8', 'fcn', 'DisAlignFCNHead', 50),
           ('fcn_r101-d8', 'fcn', 'DisAlignFCNHead', 101),
           ('deeplabv3plus_r50-d8', 'deeplabv3plus', 'DisAlignDepthwiseSeparableASPPHead', 50),
           ('deeplabv3plus_r101-d8', 'deeplabv3plus', 'DisAlignDepthwiseSeparableASPPHead', 101)]


def plain(cfg):
    """A config dict without the ``_scope_`` keys mmengine adds to the parts
    inherited from another package (``mmseg::``)."""
    if isinstance(cfg, dict):
        return {k: plain(v) for k, v in cfg.items() if k != '_scope_'}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(plain(v) for v in cfg)
    return cfg


@pytest.mark.parametrize('stem,algo,head,depth', MODELS_)
def test_stage1_is_mmseg_and_stage2_changes_only_the_head(stem, algo, head, depth):
    s1 = Config.fromfile(osp.join(CFG_DIR, f'{stem}_4xb4-160k_ade20k-512x512.py'))
    s2 = Config.fromfile(osp.join(CFG_DIR, f'{stem}_disalign_4xb4-8k_ade20k-512x512.py'))
    mm = Config.fromfile(osp.join(osp.dirname(osp.dirname(__import__('mmseg').__file__)),
                                  'mmseg', '.mim', 'configs', algo,
                                  f'{stem}_4xb4-160k_ade20k-512x512.py'))
    for key in ('model', 'train_cfg', 'train_dataloader', 'val_dataloader', 'optim_wrapper',
                'param_scheduler'):
        assert plain(s1[key]) == plain(mm[key]), key
    assert s1.val_evaluator.type == 'HeadBodyTailIoUMetric'
    assert s1.model.backbone.depth == depth and s1.train_cfg.max_iters == 160000

    # the model is stage 1's apart from the decode head (and no auxiliary head)
    for key in set(s1.model) | set(s2.model):
        if key not in ('decode_head', 'auxiliary_head'):
            assert plain(s2.model.get(key)) == plain(s1.model.get(key)), key
    assert s2.model.decode_head.type == head
    loss = s2.model.decode_head.loss_decode
    assert (loss.type, loss.rho, loss.class_counts, loss.avg_mode) == \
        ('SegGRWCrossEntropyLoss', 0.3, 'ade20k', 'count')
    assert 'use_sigmoid' not in loss
    assert s2.model.auxiliary_head is None
    assert s2.train_cfg.max_iters == 8000 and s2.param_scheduler[0].end == 8000
    assert s2.load_from is None and s2.resume is False
    assert s2.custom_hooks == [dict(type='DisAlignFreezeHook')]
    assert s2.model_wrapper_cfg.find_unused_parameters is True
    assert s2.optim_wrapper == s1.optim_wrapper
    assert s2.train_dataloader == s1.train_dataloader

    init_default_scope('mmseg')
    keys1 = set(MODELS.build(s1.model).state_dict())
    m2 = MODELS.build(s2.model)
    assert type(m2.decode_head).__name__ == head
    keys2 = set(m2.state_dict())
    # a stage-1 checkpoint (e.g. the official one) loads with no key surgery
    assert keys2 - keys1 == CALIB
    assert keys1 - keys2 == {k for k in keys1 if k.startswith('auxiliary_head.')}
    assert m2.decode_head.conv_seg.out_channels == 150
