"""disalign_mm.second_stage.stage2: a stage-2 config trained from cached features
ends exactly where a Runner run of the same config on the images ends."""
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from disalign_mm.core import DisAlignCalibration
from disalign_mm.engine import calibration_param_names
from disalign_mm.second_stage.features import cached_features
from disalign_mm.second_stage.methods import (Schedule, method_by_key, stage2_changes,
                                              train_dataset, trial_config, write_stage2_config)
from disalign_mm.second_stage.stage2 import (CachedFeatureClassifier, FeatureDataset, FeatureLoader,
                                             build_param_schedulers, build_stage2_model,
                                             load_stage1_head, train_on_features)
from tests.test_cls.fixtures import (FMNIST_STAGE1, fix_schedule, load_cfg, make_fmnist,
                                     tiny_fmnist_options)

# 30 long-tailed images of the most frequent class, 5 per class for val
SUBSET = {f'{s}_dataloader.dataset.{k}': v for s in ('train', 'val', 'test')
          for k, v in (('n_max', 30), ('val_per_class', 5))}


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _head_cfg(**kw):
    return Config(dict(model=dict(head=dict(
        type='DisAlignLinearClsHead', num_classes=3, in_channels=4,
        loss=dict(type='GRWCrossEntropyLoss', rho=1.0), **kw))))


def test_feature_loader_batches_like_a_dataloader():
    """Every sampled index once per epoch, in the sampler's order, the last
    batch partial unless drop_last."""
    feats, labels = torch.arange(10.).view(10, 1), torch.arange(10) % 3
    order = [3, 1, 4, 0, 9, 2, 6, 5, 8, 7]
    loader = FeatureLoader(feats, labels, order, batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert torch.cat([b['inputs'] for b in batches]).view(-1).long().tolist() == order
    assert torch.equal(batches[0]['data_samples'], labels[[3, 1, 4, 0]])
    assert len(FeatureLoader(feats, labels, order, 4, drop_last=True)) == 2
    ds = FeatureDataset(labels)
    assert len(ds) == 10 and ds.get_gt_labels().tolist() == labels.tolist()
    assert ds.get_data_info(4) == dict(gt_label=1)


def test_schedulers_get_the_runners_default_end():
    """A scheduler without ``end`` ends with the train loop, as in a Runner;
    convert_to_iter_based uses the epoch length."""
    from mmengine.optim import build_optim_wrapper
    model = torch.nn.Linear(2, 2)
    ow = build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=1.0)))
    cfg = Config(dict(param_scheduler=[
        dict(type='CosineAnnealingLR', T_max=3, by_epoch=True, begin=0,
             convert_to_iter_based=True)]))
    (s, ) = build_param_schedulers(cfg, ow, max_epochs=3, epoch_length=5)
    assert not s.by_epoch and (s.begin, s.end) == (0, 15)
    assert build_param_schedulers(Config(dict(param_scheduler=None)), ow, 3, 5) == []


def test_stage1_head_must_fit():
    """The stage-1 classifier loads by name; only the calibration may be
    new, a missing classifier or another shape is an error."""
    cfg = _head_cfg()
    state = {'fc.weight': torch.randn(3, 4), 'fc.bias': torch.randn(3)}
    model = build_stage2_model(cfg, state, [5, 3, 1], seed=0)
    assert torch.equal(model.head.fc.weight, state['fc.weight'])
    calib = [m for m in model.modules() if isinstance(m, DisAlignCalibration)]
    assert len(calib) == 1 and torch.equal(calib[0].alpha, torch.ones(3))
    assert model.head.loss_module.class_counts.tolist() == [5, 3, 1]
    with pytest.raises(RuntimeError, match=r"no value for \['fc.bias'\]"):
        load_stage1_head(model.head, {'fc.weight': state['fc.weight']})
    with pytest.raises(Exception, match='shape'):
        load_stage1_head(model.head, {'fc.weight': torch.randn(5, 4), 'fc.bias': torch.zeros(5)})


@pytest.mark.parametrize('name', ['VisionTransformerClsHead-hidden', 'DeiTClsHead',
                                  'ConformerHead', 'StackedLinearClsHead', 'LeViTClsHead'])
def test_cached_path_runs_the_head_after_its_classifiers(name):
    """Fed the inputs of the head's classifiers (what the cache holds, read
    by forward hooks), the cached path gives the head's logits and loss:
    whatever the head computes before its classifiers (a hidden layer,
    stacked blocks, BatchNorm, DeiT's two tokens) is not run again, and the
    classifiers' outputs are combined as the head combines them."""
    from mmpretrain.structures import DataSample

    from disalign_mm.cls.classifiers import classifier_modules
    from tests.test_cls.test_any_head import _cfg, _feats, _stage1
    head = build_head(_cfg(name, type='DisAlignHead', base_type=_cfg(name)['type'],
                           loss=dict(type='CrossEntropyLoss')))
    head.load_state_dict(_stage1(name).state_dict(), strict=False)
    with torch.no_grad():  # a calibration that is not the identity
        for m in head.modules():
            if isinstance(m, DisAlignCalibration):
                m.alpha.uniform_(0.5, 2)
                m.beta.normal_()
                m.confidence.weight.normal_()
    head.eval()
    model = CachedFeatureClassifier(head)
    inputs = []
    hooks = [m.register_forward_hook(lambda m, args, out: inputs.append(args[0]))
             for m in classifier_modules(head, model.spec)]
    feats = _feats(name)
    want = head(feats)
    want = sum(want) if isinstance(want, tuple) else want
    for h in hooks:
        h.remove()
    cached = tuple(inputs) if len(inputs) > 1 else inputs[0]
    torch.testing.assert_close(model(cached), want, rtol=0, atol=0)
    labels = torch.arange(want.shape[0]) % 5
    head.train()
    for m in head.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.eval()
    want_loss = head.loss(feats, [DataSample().set_gt_label(int(y)) for y in labels])['loss']
    got = model(cached, labels, mode='loss')['loss']
    torch.testing.assert_close(got, want_loss, rtol=0, atol=0)
    with pytest.raises(ValueError, match='cached features for a head with'):
        model(torch.ones(2, 3) if len(inputs) > 1 else (inputs[0], inputs[0]))


def build_head(cfg):
    from mmpretrain.registry import MODELS
    return MODELS.build(cfg)


def test_unsupported_training_is_an_error():
    cfg = _head_cfg()
    cfg.merge_from_dict(dict(
        custom_hooks=[dict(type='DisAlignFreezeHook')],
        train_cfg=dict(by_epoch=False, max_iters=10),
        train_dataloader=dict(batch_size=2, sampler=dict(type='DefaultSampler')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1))))
    model = build_stage2_model(cfg, {'fc.weight': torch.randn(3, 4),
                                     'fc.bias': torch.zeros(3)}, [5, 3, 1], seed=0)
    with pytest.raises(NotImplementedError, match='IterBasedTrainLoop'):
        train_on_features(cfg, model, torch.randn(6, 4), torch.tensor([0, 1, 2] * 2), seed=0)
    # no DisAlignFreezeHook: a post-hoc method, nothing trains
    cfg.custom_hooks = []
    assert train_on_features(cfg, model, torch.randn(6, 4), torch.tensor([0, 1, 2] * 2)) is None


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    """A tiny stage-1 model trained by a Runner on the fixture."""
    from mmengine.runner import Runner
    root = make_fmnist(str(tmp_path_factory.mktemp('fmnist')))
    work = str(tmp_path_factory.mktemp('stage1'))
    cfg1 = load_cfg(FMNIST_STAGE1, dict(tiny_fmnist_options(root, work, 1), **SUBSET))
    fix_schedule(cfg1, 1)
    Runner.from_cfg(cfg1).train()
    return root, cfg1, f'{work}/epoch_1.pth'


class _SetRNGState(Hook):
    """Before DisAlignFreezeHook (priority HIGHEST): the cached path's RNG
    state, so that the Runner re-initialises the same classifier."""

    def __init__(self, state: torch.Tensor) -> None:
        self.state = state

    def before_train(self, runner) -> None:
        torch.set_rng_state(self.state)


class _RecordStart(Hook):
    """After DisAlignFreezeHook (priority LOW): the head training starts from."""

    def before_train(self, runner) -> None:
        self.head = {k: v.clone() for k, v in runner.model.head.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize('key', ['disalign', 'crt', 'lws', 'grw_only', 'conf_constant'])
def test_stage2_on_features_equals_the_runner_stage2(key, stage1, tmp_path):
    """A method's stage-2 config (written from the stage-1 config), trained
    from cached features, ends at exactly the parameters a Runner run of
    that config on the images ends at (same sampler order,
    re-initialisation, optimizer, schedule, loss). DisAlign; cRT
    (re-initialised classifier, class-balanced sampler); LWS (magnitude only,
    cross entropy, class-balanced sampler); the ablations GRW only (the
    classifier re-trained, the method's own trainable patterns) and constant
    confidence. With the cached stage-1 logits (the fast path of the
    calibrated heads) the parameters agree to float rounding."""
    import copy

    from mmengine.runner import Runner
    root, cfg1, ckpt = stage1
    method = method_by_key(key)
    opts = dict(tiny_fmnist_options(root, str(tmp_path / 'stage2'), 2), **SUBSET)
    cfg_opts = copy.deepcopy(cfg1)
    cfg_opts.merge_from_dict(opts)
    from disalign_mm.second_stage.select import nested_options
    changes = stage2_changes(cfg_opts, method, Schedule(epochs=2), ckpt, None, 0, 20, 8,
                             nested_options(opts))
    base = write_stage2_config(str(tmp_path / f'{key}.py'), FMNIST_STAGE1, changes)
    hp = {k: v for k, v in dict(lr=0.3, rho=1.5).items() if k in method.grid}
    cfg2 = trial_config(base, hp)
    assert cfg2.load_from == ckpt and cfg2.randomness.seed == 0
    fix_schedule(cfg2, 2)

    data = cached_features(str(tmp_path / 'cache'), cfg1, ckpt,
                           {'train': train_dataset(cfg2)}, log=lambda m: None, progress=False)
    labels = data['train']['labels']
    counts = torch.bincount(labels, minlength=10).tolist()
    model = build_stage2_model(cfg2, data['head_state'], counts, seed=cfg2.randomness.seed)
    stage1_head = {k: v.clone() for k, v in model.head.state_dict().items()}
    rng = torch.get_rng_state()  # what the cached path re-initialises from

    runner = Runner.from_cfg(copy.deepcopy(cfg2))
    record = _RecordStart()
    runner.register_hook(_SetRNGState(rng), priority='HIGHEST')
    runner.register_hook(record, priority='LOW')
    runner.train()
    want = runner.model.head.state_dict()

    fast = copy.deepcopy(model)
    torch.set_rng_state(rng)
    frozen = train_on_features(cfg2, model, data['train']['feats'], labels)
    got = model.head.state_dict()
    assert set(got) == set(want)
    for k in want:
        assert torch.equal(got[k], want[k]), (k, (got[k] - want[k]).abs().max())
    torch.set_rng_state(rng)
    train_on_features(cfg2, fast, data['train']['feats'], labels,
                      logits=data['train']['logits'])
    assert any(fast._fast) == (key not in ('crt', 'grw_only'))
    for k, v in fast.head.state_dict().items():
        torch.testing.assert_close(v, want[k], rtol=1e-4, atol=1e-6, msg=k)

    trainable = {n for n, p in runner.model.named_parameters() if p.requires_grad}
    assert set(frozen.trainable) == trainable
    trained = {n[len('head.'):] for n in trainable}
    start = record.head  # the Runner's head when its training started
    assert all(not torch.equal(got[k], start[k]) for k in trained)  # it did train
    # fixed when stage 2 starts, not trained
    stats = {k for k in got if '.feature_' in k or '.logit_' in k}
    assert all(torch.equal(got[k], start[k]) and torch.equal(got[k], stage1_head[k])
               for k in got if k not in trained and k not in stats)
    assert all(torch.equal(got[k], start[k]) for k in stats)
    if 'fc.calibration.feature_count' in got and key != 'conf_constant':
        assert float(got['fc.calibration.feature_count']) == len(labels)
    if key in ('crt', 'grw_only'):
        assert trained == {'fc.weight', 'fc.bias'}
    else:
        assert trainable == set(calibration_param_names(model))
    # cRT starts from a re-initialised classifier, the others from stage 1
    reinit = not torch.equal(start['fc.weight'], stage1_head['fc.weight'])
    assert reinit == (key == 'crt')


def test_cached_logits_must_be_the_classifiers():
    """The fast path checks that the cached logits are the classifier's
    outputs on the cached features: a stale cache is an error."""
    cfg = _head_cfg()
    state = {'fc.weight': torch.randn(3, 4), 'fc.bias': torch.randn(3)}
    model = build_stage2_model(cfg, state, [5, 3, 1], seed=0)
    for p in model.head.fc.parameters(recurse=False):
        p.requires_grad_(False)
    x = torch.randn(6, 4)
    z = x @ state['fc.weight'].T + state['fc.bias']
    assert model.use_cached_logits(x, z)
    calibrated = model(dict(feats=x, logits=z))
    torch.testing.assert_close(calibrated, model.head((x, )))
    with pytest.raises(RuntimeError, match='stale cache'):
        model.use_cached_logits(x, z + 1)
    model.head.fc.weight.requires_grad_(True)  # the classifier trains: no cached logits
    assert not model.use_cached_logits(x, z)


class _TwoBranchToy(torch.nn.Module):
    """A backbone with Conformer's output (``[conv feature, transformer
    feature]`` of two widths), small enough for the tests."""

    def __init__(self, **vit_args) -> None:  # the tiny-ViT config's arguments, unused
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, kernel_size=7, stride=7)
        self.fc = torch.nn.Linear(64, 6)

    def forward(self, x):
        y = self.conv(x)
        return ([y.mean((2, 3)), torch.tanh(self.fc(y.flatten(1)))], )


#: stage-1 heads other than LinearClsHead, on the tiny-ViT config: a ViT head
#: with its hidden layer (the classifier's input is not the backbone's
#: output), DeiT (two classifiers, mean) and Conformer's head (two
#: classifiers of two widths, sum, one loss per classifier)
OTHER_HEADS = {
    'vit-hidden': {'model.head.hidden_dim': 12},
    'deit': {'model.backbone.type': 'DistilledVisionTransformer',
             'model.head.type': 'DeiTClsHead'},
    'conformer': {'model.backbone.type': '_TwoBranchToy', 'model.head.type': 'ConformerHead',
                  'model.head.in_channels': [4, 6]},
}


@pytest.fixture(scope='module', params=sorted(OTHER_HEADS))
def other_stage1(request, tmp_path_factory):
    from mmengine.runner import Runner
    from mmpretrain.registry import MODELS

    from tests.test_cls.fixtures import FMNIST_VIT_STAGE1, tiny_vit_options
    MODELS.register_module('_TwoBranchToy', module=_TwoBranchToy, force=True)
    root = make_fmnist(str(tmp_path_factory.mktemp('fmnist')))
    work = str(tmp_path_factory.mktemp('stage1'))
    opts = dict(tiny_vit_options(root, work, 1), **SUBSET, **OTHER_HEADS[request.param])
    cfg1 = load_cfg(FMNIST_VIT_STAGE1, opts)
    fix_schedule(cfg1, 1)
    Runner.from_cfg(cfg1).train()
    return request.param, root, cfg1, opts, f'{work}/epoch_1.pth'


@pytest.mark.slow
@pytest.mark.parametrize('key', ['disalign', 'crt'])
def test_stage2_of_other_heads_on_features_equals_the_runner_stage2(key, other_stage1, tmp_path):
    """The same for heads whose classifier is not the backbone's output or
    that have two classifiers: the cached path (the classifiers' inputs,
    read by forward hooks) trains to the Runner's parameters."""
    import copy

    from mmengine.runner import Runner

    from disalign_mm.second_stage.select import nested_options
    from tests.test_cls.fixtures import FMNIST_VIT_STAGE1
    name, root, cfg1, opts1, ckpt = other_stage1
    method = method_by_key(key)
    opts = dict(opts1, work_dir=str(tmp_path / 'stage2'))
    changes = stage2_changes(cfg1, method, Schedule(epochs=2), ckpt, None, 0, 20, 8,
                             nested_options(opts))
    cfg2 = trial_config(write_stage2_config(str(tmp_path / f'{key}.py'), FMNIST_VIT_STAGE1,
                                            changes), {'lr': 0.3})
    fix_schedule(cfg2, 2)
    data = cached_features(str(tmp_path / 'cache'), cfg1, ckpt,
                           {'train': train_dataset(cfg2)}, log=lambda m: None, progress=False)
    two = name in ('deit', 'conformer')
    assert isinstance(data['train']['feats'], tuple) == two
    labels = data['train']['labels']
    counts = torch.bincount(labels, minlength=10).tolist()
    model = build_stage2_model(cfg2, data['head_state'], counts, seed=0)
    rng = torch.get_rng_state()
    runner = Runner.from_cfg(copy.deepcopy(cfg2))
    runner.register_hook(_SetRNGState(rng), priority='HIGHEST')
    runner.train()
    want = runner.model.head.state_dict()
    torch.set_rng_state(rng)
    # DisAlign with the cached logits (equal to float rounding), cRT without
    # (equal bit for bit, but for ViT's hidden layer: the cached features are
    # its outputs in the extraction's batch shapes, which can change last bits)
    logits = data['train']['logits'] if key == 'disalign' else None
    frozen = train_on_features(cfg2, model, data['train']['feats'], labels, logits=logits)
    assert any(model._fast) == (key == 'disalign')
    got = model.head.state_dict()
    assert set(got) == set(want)
    for k in want:
        if logits is None and name != 'vit-hidden':
            assert torch.equal(got[k], want[k]), (k, (got[k] - want[k]).abs().max())
        else:
            torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-6, msg=k)
    trainable = {n for n, p in runner.model.named_parameters() if p.requires_grad}
    assert set(frozen.trainable) == trainable
    if key == 'crt':
        classifiers = {'vit-hidden': ['layers.head'], 'deit': ['layers.head', 'layers.head_dist'],
                       'conformer': ['conv_cls_head', 'trans_cls_head']}[name]
        assert trainable == {f'head.{c}.{p}' for c in classifiers for p in ('weight', 'bias')}
    else:
        assert trainable == set(calibration_param_names(runner.model))
        assert len({n.rsplit('.calibration.')[0] for n in trainable}) == (2 if two else 1)
