"""disalign_mm.second_stage.methods: second stages written as configs that inherit
any stage-1 config; for the Fashion-MNIST-LT stage 1 they are the shipped
stage-2 configs."""
import os.path as osp

import pytest

from disalign_mm.benchmarks import fmnist_lt
from disalign_mm.benchmarks.configs import config_path
from disalign_mm.second_stage.config import load_config
from disalign_mm.second_stage.methods import (METHODS, Schedule, config_text, method_by_key,
                                              stage2_changes, supports, trial_config,
                                              write_stage2_config)

#: what a Runner reads of a config
RUNNER_KEYS = ('model', 'train_dataloader', 'val_dataloader', 'test_dataloader',
               'optim_wrapper', 'param_scheduler', 'train_cfg', 'val_cfg', 'test_cfg',
               'custom_hooks', 'default_hooks', 'val_evaluator', 'test_evaluator',
               'model_wrapper_cfg', 'randomness', 'custom_imports', 'env_cfg', 'load_from')
SHIPPED = dict(disalign='fmnist_disalign', crt='fmnist_crt', lws='fmnist_lws',
               taunorm='fmnist_taunorm', logitadj='fmnist_logitadj')


def _write(tmp_path, key, stage1=fmnist_lt.STAGE1, options=None, **kw):
    cfg1 = load_config(stage1)
    args = dict(schedule=Schedule(epochs=fmnist_lt.STAGE2_EPOCHS), load_from=None,
                counts_file=None, seed=0, many_thr=1000, few_thr=200, options=options)
    args.update(kw)
    changes = stage2_changes(cfg1, method_by_key(key), **args)
    return write_stage2_config(str(tmp_path / f'{key}.py'), stage1, changes, ['a test'])


@pytest.mark.parametrize('key', sorted(SHIPPED) + ['vit-disalign'])
def test_written_configs_are_the_shipped_ones(key, tmp_path):
    """Every key a Runner reads is the same in the written config and in the
    shipped stage-2 config of the same method (the ResNet's, and DisAlign of
    the tiny ViT)."""
    if key == 'vit-disalign':
        written = _write(tmp_path, 'disalign', stage1=config_path('fmnist_vit_stage1'))
        shipped = load_config(config_path('fmnist_vit_disalign'))
    else:
        written = _write(tmp_path, key)
        shipped = load_config(config_path(SHIPPED[key]))
    for k in RUNNER_KEYS:
        assert written.get(k) == shipped.get(k), k


def test_config_text_inherits_the_stage1_config(tmp_path):
    cfg = _write(tmp_path, 'disalign', load_from='/ckpt/stage1.pth', counts_file='/c.json',
                 options=dict(train_dataloader=dict(dataset=dict(n_max=30))))
    text = open(tmp_path / 'disalign.py').read()
    assert text.startswith('# a test\n') and f"_base_ = ['{osp.abspath(fmnist_lt.STAGE1)}']" in text
    assert cfg.load_from == '/ckpt/stage1.pth'
    assert cfg.train_dataloader.dataset.n_max == 30  # the stage-1 run's options come along
    assert cfg.custom_hooks[0] == dict(type='ClassCountsHook', class_counts_file='/c.json')
    hp = trial_config(cfg, dict(lr=0.03, rho=2.0))
    assert (hp.optim_wrapper.optimizer.lr, hp.model.head.loss.rho) == (0.03, 2.0)
    assert 'x = {' in config_text('/b.py', dict(x=dict(a=1)))


def test_every_method_writes_a_config(tmp_path):
    for m in METHODS:
        if m.same_as:
            continue
        cfg = _write(tmp_path, m.key)
        hooks = [h.type for h in cfg.custom_hooks]
        assert hooks == (['ClassCountsHook'] if m.posthoc else
                         ['ClassCountsHook', 'DisAlignFreezeHook']), m.key
        if m.key == 'grw_only':
            assert cfg.model.head.type == 'LinearClsHead'
            assert cfg.model.head.loss.type == 'GRWCrossEntropyLoss'
        if m.key == 'conf_none':
            assert cfg.model.head.calibration.confidence == 'none'


def test_wrapped_datasets_cosine_heads_and_unsupported_heads(tmp_path):
    """A training set in a ClassBalancedDataset is read plain in stage 2; a
    cosine stage 1 gets the cosine DisAlign head and no post-hoc peers; a
    second-stage config given as stage 1 is an error."""
    stage1 = tmp_path / 'stage1.py'
    stage1.write_text(
        f"_base_ = ['{fmnist_lt.STAGE1}']\n"
        "model = dict(head=dict(_delete_=True, type='CosineClsHead', num_classes=10, "
        "in_channels=64, loss=dict(type='CrossEntropyLoss')))\n"
        "train_dataloader = dict(dataset=dict(_delete_=True, type='ClassBalancedDataset', "
        "oversample_thr=0.5, dataset={{_base_.train_dataloader.dataset}}))\n")
    cfg = _write(tmp_path, 'disalign', stage1=str(stage1))
    assert cfg.model.head.type == 'DisAlignCosineClsHead'
    assert cfg.train_dataloader.dataset.type == 'FashionMNISTLT'
    assert cfg.train_dataloader.dataset.pipeline == [dict(type='PackInputs')]
    assert 'oversample_thr' not in cfg.train_dataloader.dataset
    assert 'linear classifier' in supports(method_by_key('taunorm'), load_config(str(stage1)))
    with pytest.raises(ValueError, match='second-stage config'):
        _write(tmp_path, 'crt', stage1=config_path('fmnist_disalign'))


def test_other_heads_get_the_generic_second_stages(tmp_path):
    """A ViT stage 1 with Mixup / CutMix: DisAlign is DisAlignHead over its
    head (the stage-1 arguments kept), cRT re-trains ``layers.head``, the
    batch augmentations are off in the trained second stages; the post-hoc
    heads keep the stage-1 model as it is."""
    stage1 = tmp_path / 'vit.py'
    stage1.write_text(
        f"_base_ = ['{config_path('fmnist_stage1')}']\n"
        "model = dict(backbone=dict(_delete_=True, type='VisionTransformer', arch=dict("
        "embed_dims=16, num_layers=1, num_heads=2, feedforward_channels=16), img_size=28, "
        "patch_size=7, in_channels=1), neck=None, head=dict(_delete_=True, "
        "type='VisionTransformerClsHead', num_classes=10, in_channels=16, hidden_dim=8, "
        "loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')), "
        "train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', "
        "alpha=1.0)]))\n")
    cfg = _write(tmp_path, 'disalign', stage1=str(stage1))
    head = cfg.model.head
    assert (head.type, head.base_type, head.hidden_dim) == ('DisAlignHead',
                                                            'VisionTransformerClsHead', 8)
    assert head.loss == dict(type='GRWCrossEntropyLoss', rho=1.2)
    assert cfg.model.train_cfg is None
    crt = _write(tmp_path, 'crt', stage1=str(stage1))
    assert crt.model.head.type == 'VisionTransformerClsHead'
    assert crt.model.head.loss.type == 'LabelSmoothLoss' and crt.model.train_cfg is None
    freeze = crt.custom_hooks[-1]
    assert (freeze.trainable, freeze.reinit) == ([r'^head\.layers\.head\.'],
                                                 [r'head\.layers\.head'])
    taunorm = _write(tmp_path, 'taunorm', stage1=str(stage1))
    head = taunorm.model.head
    assert (head.type, head.base_type) == ('TauNormHead', 'VisionTransformerClsHead')
    assert taunorm.model.train_cfg.augments[0].type == 'Mixup'  # mim test only


def test_crt_needs_a_head_mmpretrain_trains(tmp_path):
    """mmpretrain refuses to train the distilled EfficientFormer head: cRT
    (the stage-1 head re-trained) is skipped with the reason, DisAlign (whose
    head trains on the test-time output) is not."""
    stage1 = tmp_path / 'ef.py'
    stage1.write_text(
        f"_base_ = ['{config_path('fmnist_stage1')}']\n"
        "model = dict(head=dict(_delete_=True, type='EfficientFormerClsHead', num_classes=10, "
        "in_channels=64, distillation=True))\n")
    cfg = load_config(str(stage1))
    assert 'refuses to train the EfficientFormerClsHead' in supports(method_by_key('crt'), cfg)
    assert supports(method_by_key('disalign'), cfg) is None
    assert supports(method_by_key('taunorm'), cfg) is None


def test_unsupported_stage1_heads_are_named(tmp_path):
    stage1 = tmp_path / 'ml.py'
    stage1.write_text(
        f"_base_ = ['{config_path('fmnist_stage1')}']\n"
        "model = dict(head=dict(_delete_=True, type='MultiLabelLinearClsHead', num_classes=10, "
        "in_channels=64))\n")
    with pytest.raises(NotImplementedError, match='MultiLabelLinearClsHead is a multi-label head'
                       '.*supported: LinearClsHead, CosineClsHead, VisionTransformerClsHead'):
        _write(tmp_path, 'disalign', stage1=str(stage1))
