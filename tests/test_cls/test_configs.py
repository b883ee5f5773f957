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
# the paper's backbone tables (Tables 10, 13, 14), linear and cosine ("*")
EXPECTED = {
    'imagenet_lt': {f'{b}{c}' for b in ('resnet50', 'resnet101', 'resnet152', 'resnext50-32x4d',
                                        'resnext101-32x4d', 'resnext152-32x4d')
                    for c in ('', '_cosine')},
    'inaturalist2018': {'resnet50', 'resnet101', 'resnet152'},
    'places_lt': {'resnet50_in1k-pre', 'resnet101_in1k-pre', 'resnet152_in1k-pre'},
    'fashion_mnist_lt': {'resnet-s'},
}
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
    allowed = ALLOWED + EXTRA_ALLOWED.get(folder, ())
    assert {k for k in changed if not k.startswith(allowed)} == set()

    head = s2.model.head
    model, _ = _parts(path)
    cosine = model.endswith('_cosine')
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
        assert s1.train_cfg.max_epochs == (30 if folder == 'places_lt' else 90)
        opt = s2.optim_wrapper.optimizer
        assert (opt.type, opt.lr, opt.momentum) == ('SGD', 0.1, 0.9)
        assert s2.train_dataloader.batch_size * 8 == 256
        assert s2.param_scheduler.type == 'CosineAnnealingLR'
        assert s2.param_scheduler.T_max == s2.train_cfg.max_epochs
        assert s1.val_evaluator.type == 'LongTailAccuracy'
        # Decouple's augmentation: ColorJitter except for iNaturalist
        jitter = [t for t in s2.train_dataloader.dataset.pipeline if t['type'] == 'ColorJitter']
        assert jitter == ([] if folder == 'inaturalist2018' else [
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
    assert sorted(res.missing_keys) == calibration_keys('head.fc.calibration.')
