"""The shipped configs: every stage-2 config is its stage-1 config with only
the stage-2 changes, and a stage-1 model's weights load into it as they are."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

import disalign_mm.cls  # noqa: F401
from tests.calibration_keys import calibration_keys
from tests.test_cls.fixtures import CFG_DIR

STAGE2 = sorted(
    glob.glob(osp.join(CFG_DIR, d, '*_stage2_disalign.py'))
    for d in ('imagenet_lt', 'inaturalist2018', 'places_lt', 'fashion_mnist_lt'))
STAGE2 = sorted(p for group in STAGE2 for p in group)

# what a stage-2 config may change (DESIGN: head/classifier, loss, load_from,
# schedule, freezing hook, DDP wrapper, resume)
ALLOWED = ('model.head.', 'load_from', 'resume', 'param_scheduler', 'train_cfg.',
           'custom_hooks', 'model_wrapper_cfg', 'default_hooks.checkpoint.', 'max_epochs',
           'optim_wrapper.')
EXTRA_ALLOWED = {
    # no download: the stage-1 checkpoint holds the whole backbone
    'places-lt_r152_linear_stage2_disalign.py': ('model.backbone.init_cfg', ),
    # no random augmentation, so a resumed stage 2 is exact
    'fmnist-lt_resnet-s_stage2_disalign.py': ('train_dataloader.dataset.pipeline', ),
}


def _flat(d, prefix=''):
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flat(v, f'{prefix}{k}.'))
    else:
        out[prefix[:-1]] = d
    return out


def _stage1_of(path):
    name = osp.basename(path).replace('_stage2_disalign.py', '_stage1.py')
    return osp.join(osp.dirname(path), name)


def test_every_dataset_has_stage1_and_stage2_side_by_side():
    names = [osp.basename(p) for p in STAGE2]
    # ImageNet-LT: R50/X50 x linear/cosine; iNat 2018; Places-LT; Fashion-MNIST-LT
    assert len(names) == 7, names
    for p in STAGE2:
        assert osp.isfile(_stage1_of(p))


@pytest.mark.parametrize('path', STAGE2, ids=osp.basename)
def test_stage2_changes_only_stage2_things_and_loads_stage1(path):
    s1, s2 = Config.fromfile(_stage1_of(path)), Config.fromfile(path)
    f1, f2 = _flat(s1.to_dict()), _flat(s2.to_dict())
    changed = {k for k in set(f1) | set(f2) if f1.get(k, object()) != f2.get(k, object())}
    allowed = ALLOWED + EXTRA_ALLOWED.get(osp.basename(path), ())
    assert {k for k in changed if not k.startswith(allowed)} == set()

    head = s2.model.head
    cosine = 'cosine' in osp.basename(path)
    assert head.type == ('DisAlignCosineClsHead' if cosine else 'DisAlignLinearClsHead')
    assert head.loss == dict(type='GRWCrossEntropyLoss', rho=1.5 if cosine else 1.2)
    assert head.calibration == dict(alpha_init=1.0, beta_init=0.0, confidence='input')
    assert s2.load_from is None and s2.resume is False
    assert [h['type'] for h in s2.custom_hooks] == ['ClassCountsHook', 'DisAlignFreezeHook']
    assert s2.model_wrapper_cfg == dict(type='MMDistributedDataParallel',
                                        find_unused_parameters=True)
    if 'fashion' not in path:  # paper A.2 recipes
        assert s2.train_cfg.max_epochs == (30 if 'inat' in path else 10)
        assert s1.train_cfg.max_epochs == (30 if 'places' in path else 90)
        opt = s2.optim_wrapper.optimizer
        assert (opt.type, opt.lr, opt.momentum) == ('SGD', 0.1, 0.9)
        assert s2.train_dataloader.batch_size * 8 == 256
        assert s2.param_scheduler.type == 'CosineAnnealingLR'
        assert s2.param_scheduler.T_max == s2.train_cfg.max_epochs
        assert s1.val_evaluator.type == 'LongTailAccuracy'

    for cfg in (s1, s2):
        cfg.model.backbone.init_cfg = None
    m1, m2 = MODELS.build(s1.model), MODELS.build(s2.model)
    res = m2.load_state_dict(m1.state_dict(), strict=False)
    assert res.unexpected_keys == []
    assert sorted(res.missing_keys) == calibration_keys('head.fc.calibration.')
