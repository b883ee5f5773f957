"""The shipped classification configs: every DisAlign stage-2 config is its
stage-1 config with only the stage-2 changes, and a stage-1 model's weights
load into it as they are (every backbone of the paper's tables; the
full-size builds are marked slow)."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

import disalign_mm.cls  # noqa: F401
from tests.calibration_keys import calibration_keys
from tests.test_cls.fixtures import CFG_DIR

FOLDERS = ('imagenet_lt', 'inaturalist2018', 'places_lt', 'fashion_mnist_lt')
STAGE2 = sorted(p for d in FOLDERS for p in glob.glob(osp.join(CFG_DIR, d, 'disalign_*.py')))

# what a stage-2 config may change (DESIGN: head/classifier, loss, load_from,
# schedule, freezing hook, DDP wrapper, resume)
ALLOWED = ('model.head.', 'load_from', 'resume', 'param_scheduler', 'train_cfg.',
           'custom_hooks', 'model_wrapper_cfg', 'default_hooks.checkpoint.', 'max_epochs',
           'optim_wrapper.')
EXTRA_ALLOWED = {
    # no download: the stage-1 checkpoint holds the whole backbone
    'places_lt': ('model.backbone.init_cfg', ),
    # no random augmentation, so a resumed stage 2 is exact
    'fashion_mnist_lt': ('train_dataloader.dataset.pipeline', ),
}
#: the transformers (and ConvNeXt) beside the paper's backbones: ViT-B/16 from
#: CLIP, Swin-T, ConvNeXt-T; the tiny ViT of Fashion-MNIST-LT
TRANSFORMERS = {
    'imagenet_lt': {'vit-base-p16_clip-pre', 'swin-tiny', 'convnext-tiny'},
    'places_lt': {'vit-base-p16_clip-in1k-pre', 'swin-tiny_in1k-pre', 'convnext-tiny_in1k-pre'},
    'fashion_mnist_lt': {'vit-tiny-p4'},
}
# the paper's backbone tables (Tables 10, 13, 14), linear and cosine ("*"),
# and the transformers
EXPECTED = {
    'imagenet_lt': {f'{b}{c}' for b in ('resnet50', 'resnet101', 'resnet152', 'resnext50-32x4d',
                                        'resnext101-32x4d', 'resnext152-32x4d')
                    for c in ('', '_cosine')} | TRANSFORMERS['imagenet_lt'],
    'inaturalist2018': {'resnet50', 'resnet101', 'resnet152'},
    'places_lt': {'resnet50_in1k-pre', 'resnet101_in1k-pre', 'resnet152_in1k-pre'}
    | TRANSFORMERS['places_lt'],
    'fashion_mnist_lt': {'resnet-s'} | TRANSFORMERS['fashion_mnist_lt'],
}
#: what a transformer stage 2 may change besides: the stage-1 checkpoint holds
#: the backbone (no pre-trained download), the paper's batch of 256 over the
#: stage-1 recipe's (and its auto_scale_lr), no batch augmentations (Mixup,
#: CutMix)
TRANSFORMER_ALLOWED = ('model.backbone.init_cfg', 'train_dataloader.batch_size',
                       'model.train_cfg', 'auto_scale_lr.')
#: stage-1 epochs of the transformers (ImageNet-LT's Swin-T and ConvNeXt-T
#: from scratch with mmpretrain's 300-epoch recipes, the others fine-tuned)
TRANSFORMER_EPOCHS = {'swin-tiny': 300, 'convnext-tiny': 300}
DEPTH = {'50': 50, '101': 101, '152': 152}


def _flat(d, prefix=''):
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flat(v, f'{prefix}{k}.'))
    else:
        out[prefix[:-1]] = d
    return out


def _parts(path):
    """``disalign_<model>_<NxB>-coslr-<E>e_<data>.py`` -> (model, data)."""
    m = re.fullmatch(r'disalign_(.+)_(\d+xb\d+)-coslr-(\d+)e_([\w-]+)\.py', osp.basename(path))
    assert m, osp.basename(path)
    return m.group(1), m.group(4)


def _stage1_of(path):
    """The stage-1 config of the same model and data, whatever its epochs."""
    model, data = _parts(path)
    pattern = rf'{re.escape(model)}_\d+xb\d+-coslr-\d+e_{re.escape(data)}\.py'
    found = [p for p in glob.glob(osp.join(osp.dirname(path), '*.py'))
             if re.fullmatch(pattern, osp.basename(p))]
    assert len(found) == 1, found
    return found[0]


def test_every_backbone_of_the_paper_has_stage1_and_stage2():
    for folder, models in EXPECTED.items():
        shipped = {_parts(p)[0] for p in STAGE2 if osp.basename(osp.dirname(p)) == folder}
        assert shipped == models, folder
    for p in STAGE2:
        assert osp.isfile(_stage1_of(p))


@pytest.mark.parametrize('path', STAGE2, ids=osp.basename)
def test_stage2_changes_only_stage2_things(path):
    s1, s2 = Config.fromfile(_stage1_of(path)), Config.fromfile(path)
    folder = osp.basename(osp.dirname(path))
    f1, f2 = _flat(s1.to_dict()), _flat(s2.to_dict())
    changed = {k for k in set(f1) | set(f2) if f1.get(k, object()) != f2.get(k, object())}
    model, _ = _parts(path)
    transformer = model in TRANSFORMERS.get(folder, ())
    allowed = ALLOWED + EXTRA_ALLOWED.get(folder, ()) + (TRANSFORMER_ALLOWED if transformer
                                                         else ())
    assert {k for k in changed if not k.startswith(allowed)} == set()

    head = s2.model.head
    cosine = model.endswith('_cosine')
    if model.startswith('vit-'):  # VisionTransformerClsHead, by the generic DisAlignHead
        assert (head.type, head.base_type) == ('DisAlignHead', 'VisionTransformerClsHead')
        assert s1.model.head.type == 'VisionTransformerClsHead'
    else:
        assert head.type == ('DisAlignCosineClsHead' if cosine else 'DisAlignLinearClsHead')
        assert s1.model.head.type == ('CosineClsHead' if cosine else 'LinearClsHead')
    assert head.loss == dict(type='GRWCrossEntropyLoss', rho=1.5 if cosine else 1.2)
    # no calibration options: the head's defaults, the identity (paper A.2)
    assert 'calibration' not in head
    assert s2.load_from is None and s2.resume is False
    assert [h['type'] for h in s2.custom_hooks] == ['ClassCountsHook', 'DisAlignFreezeHook']
    assert s2.model_wrapper_cfg == dict(find_unused_parameters=True)
    backbone = s2.model.backbone
    depth = re.match(r'resne(?:t|xt)(\d+)', model)
    if depth:
        assert backbone.depth == DEPTH[depth.group(1)]
        assert backbone.type == ('ResNeXt' if model.startswith('resnext') else 'ResNet')
        if backbone.type == 'ResNeXt':
            assert (backbone.groups, backbone.width_per_group) == (32, 4)
    if folder != 'fashion_mnist_lt':  # paper A.2 recipes
        assert s2.train_cfg.max_epochs == (30 if folder == 'inaturalist2018' else 10)
        if transformer:  # the fine-tuning recipes (docs/recipes.md)
            assert s1.train_cfg.max_epochs == TRANSFORMER_EPOCHS.get(model, 10)
            assert s2.model.get('train_cfg') is None  # no Mixup / CutMix in stage 2
        else:
            assert s1.train_cfg.max_epochs == (30 if folder == 'places_lt' else 90)
        opt = s2.optim_wrapper.optimizer
        assert (opt.type, opt.lr, opt.momentum) == ('SGD', 0.1, 0.9)
        assert s2.train_dataloader.batch_size * 8 == 256
        assert s2.param_scheduler.type == 'CosineAnnealingLR'
        assert s2.param_scheduler.T_max == s2.train_cfg.max_epochs
        assert s1.val_evaluator.type == 'LongTailAccuracy'
        # Decouple's augmentation: ColorJitter except for iNaturalist
        # (the transformers: their stage-1 pipelines, mmpretrain's)
        jitter = [t for t in s2.train_dataloader.dataset.pipeline if t['type'] == 'ColorJitter']
        assert jitter == ([] if folder == 'inaturalist2018' or transformer else [
            dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4)])


@pytest.mark.slow  # full-size models: 19 x 2 builds, minutes on 2 cores
@pytest.mark.parametrize('path', STAGE2, ids=osp.basename)
def test_stage1_weights_load_into_stage2(path):
    s1, s2 = Config.fromfile(_stage1_of(path)), Config.fromfile(path)
    for cfg in (s1, s2):
        cfg.model.backbone.init_cfg = None
    m1, m2 = MODELS.build(s1.model), MODELS.build(s2.model)
    res = m2.load_state_dict(m1.state_dict(), strict=False)
    assert res.unexpected_keys == []
    # only the calibration is new
    classifier = 'layers.head' if _parts(path)[0].startswith('vit-') else 'fc'
    assert sorted(res.missing_keys) == calibration_keys(f'head.{classifier}.calibration.')


#: cfg-options that shrink the transformer configs to seconds (no download:
#: the stage-1 checkpoint is written here)
TINY = {
    'vit': {'model.backbone.arch': dict(_delete_=True, embed_dims=16, num_layers=2, num_heads=2,
                                        feedforward_channels=16),
            'model.backbone.img_size': 32, 'model.head.in_channels': 16},
    'swin': {'model.backbone.arch': dict(_delete_=True, embed_dims=8, depths=[1, 1, 1, 1],
                                         num_heads=[1, 1, 1, 1]),
             'model.backbone.img_size': 32, 'model.backbone.window_size': 2,
             'model.head.in_channels': 64},
    'convnext': {'model.backbone.arch': dict(_delete_=True, depths=[1, 1, 1, 1],
                                             channels=[4, 8, 16, 32]),
                 'model.head.in_channels': 32},
}
TRANSFORMER_STAGE2 = [p for p in STAGE2 if _parts(p)[0] in
                      TRANSFORMERS.get(osp.basename(osp.dirname(p)), ())
                      and not p.endswith('fmnist-lt.py')]
PEERS = sorted(p for d in ('imagenet_lt', 'places_lt')
               for p in glob.glob(osp.join(CFG_DIR, d, '*vit-base-p16*.py'))
               if osp.basename(p).startswith(('crt_', 'lws_', 'tau-norm_', 'logit-adjust_')))


def _tiny(path, **extra):
    from mmpretrain.models import ImageClassifier
    cfg = Config.fromfile(path)
    family = next(f for f in TINY if f'{f}-' in osp.basename(path))
    cfg.merge_from_dict(dict(TINY[family], **{'model.backbone.init_cfg': None}, **extra))
    model = MODELS.build(cfg.model)
    assert isinstance(model, ImageClassifier)
    return cfg, model


def test_the_transformer_configs_are_the_ones_listed():
    assert len(TRANSFORMER_STAGE2) == 6 and len(PEERS) == 8


@pytest.mark.parametrize('path', TRANSFORMER_STAGE2 + PEERS, ids=osp.basename)
def test_transformer_configs_build_and_load_their_stage1_weights(path, tmp_path):
    """Tiny sizes by cfg-options, no download: the stage-1 model's
    checkpoint (written here) loads into the stage-2 model with its keys
    unchanged; only the calibration (none for cRT and the post-hoc heads)
    is new, at ``<classifier>.calibration.*``."""
    from mmengine.runner.checkpoint import load_checkpoint
    name = osp.basename(path)
    if name.startswith('disalign_'):
        stage1_path = _stage1_of(path)
    else:  # a peer: its stage 1 is its base (LWS: the base of its DisAlign base)
        base = re.search(r"_base_ = \['\./([^']+)'\]", open(path).read()).group(1)
        stage1_path = osp.join(osp.dirname(path), base)
        if base.startswith('disalign_'):
            stage1_path = _stage1_of(stage1_path)
    s1, m1 = _tiny(stage1_path)
    s2, m2 = _tiny(path)
    ckpt = str(tmp_path / 'stage1.pth')
    import torch
    torch.save(dict(state_dict=m1.state_dict(), meta=dict()), ckpt)
    load_checkpoint(m2, ckpt, map_location='cpu', strict=False)
    own = m2.state_dict()
    classifier = 'layers.head' if 'vit-' in name else 'fc'
    prefix = f'head.{classifier}.calibration.'
    assert set(m1.state_dict()) <= set(own)
    added = set(own) - set(m1.state_dict())
    if name.startswith('disalign_'):
        assert added == set(calibration_keys(prefix))
    elif name.startswith('lws_'):  # the magnitude only
        assert added == {prefix + k for k in ('alpha', 'logit_rms', 'logit_count')}
    else:
        assert added == set()
    for k, v in m1.state_dict().items():
        assert torch.equal(own[k], v), k
    if name.startswith('crt_'):
        hook = [h for h in s2.custom_hooks if h['type'] == 'DisAlignFreezeHook'][0]
        assert (hook['trainable'], hook['reinit']) == ([r'^head\.layers\.head\.'],
                                                       [r'head\.layers\.head'])
