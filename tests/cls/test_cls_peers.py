"""DisAlign's simpler second-stage peers in mmpretrain: cRT and LWS (with the
class-balanced sampler), and the post-hoc tau-normalised and logit-adjusted
heads; unit tests, the shipped configs, and shrunk end-to-end runs from one
tiny stage-1 checkpoint."""
import glob
import os.path as osp
import pickle
import subprocess

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _cls_fixtures import (CFG_DIR, FMNIST_STAGE1, MIM, REPO, fix_schedule, load_cfg, make_fmnist,
                           tiny_fmnist_options)
from mmengine.dataset import default_collate
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import DATA_SAMPLERS, DATASETS, MODELS
from mmpretrain.structures import DataSample

import disalign_mm.cls  # noqa: F401
import disalign_mm.cls.samplers as samplers_mod
from disalign_mm.cls import ClassBalancedSampler, LogitAdjustedClsHead, TauNormClsHead
from disalign_mm.engine.class_stats import ClassCounts

TINY_COUNTS = [40, 30, 23, 18, 14, 11, 8, 6, 5, 4]
FMNIST = osp.join(CFG_DIR, 'fashion_mnist_lt')
CRT = osp.join(FMNIST, 'fmnist-lt_resnet-s_stage2_crt.py')
LWS = osp.join(FMNIST, 'fmnist-lt_resnet-s_stage2_lws.py')
TAU_NORM = osp.join(FMNIST, 'fmnist-lt_resnet-s_posthoc_tau-norm.py')
LOGIT_ADJ = osp.join(FMNIST, 'fmnist-lt_resnet-s_posthoc_logit-adjust.py')
NEW_CONFIGS = sorted(
    glob.glob(osp.join(CFG_DIR, '*', '*_stage2_crt.py')) + glob.glob(
        osp.join(CFG_DIR, '*', '*_stage2_lws.py')) + glob.glob(
            osp.join(CFG_DIR, '*', '*_posthoc_*.py')))


# ------------------------------------------------------------------ heads
def _feats(n=5, c=4, seed=0):
    return (torch.randn(n, c, generator=torch.Generator().manual_seed(seed)), )


def _linear_state(k=3, c=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {'fc.weight': torch.randn(k, c, generator=g) * torch.arange(1., k + 1)[:, None],
            'fc.bias': torch.randn(k, generator=g)}


def test_tau_norm_head_loads_a_linear_head_and_normalises():
    stage1 = LinearClsHead(num_classes=3, in_channels=4)
    stage1.load_state_dict(_linear_state())
    head = TauNormClsHead(num_classes=3, in_channels=4, tau=1.0)
    assert head.load_state_dict(stage1.state_dict()) is not None  # same keys, strict
    feats = _feats()
    w, b = stage1.fc.weight.detach(), stage1.fc.bias.detach()
    unit = w / w.norm(dim=1, keepdim=True)
    torch.testing.assert_close(head(feats), feats[0] @ unit.T, rtol=0, atol=1e-6)
    keep = TauNormClsHead(num_classes=3, in_channels=4, tau=0.5, keep_bias=True)
    keep.load_state_dict(stage1.state_dict())
    want = feats[0] @ (w / w.norm(dim=1, keepdim=True).sqrt()).T + b
    torch.testing.assert_close(keep(feats), want, rtol=0, atol=1e-6)
    # tau 0 with the bias is the stage-1 head
    same = TauNormClsHead(num_classes=3, in_channels=4, tau=0.0, keep_bias=True)
    same.load_state_dict(stage1.state_dict())
    torch.testing.assert_close(same(feats), stage1(feats), rtol=0, atol=0)
    # predict() goes through forward: softmax of the normalised logits
    pred = head.predict(feats, [DataSample() for _ in range(5)])
    torch.testing.assert_close(pred[0].pred_score, F.softmax(feats[0] @ unit.T, 1)[0])


def test_tau_norm_head_errors():
    with pytest.raises(ValueError, match='tau must be a finite number >= 0'):
        TauNormClsHead(num_classes=3, in_channels=4, tau=-1)
    head = TauNormClsHead(num_classes=3, in_channels=4)
    with pytest.raises(ValueError, match=r'\(5, 4\) \(5 classes.*num_classes=3'):
        head.load_state_dict({'fc.weight': torch.ones(5, 4), 'fc.bias': torch.ones(5)})
    with pytest.raises(RuntimeError, match='post-hoc inference head.*mim test'):
        head.loss(_feats(), [DataSample().set_gt_label(0) for _ in range(5)])
    head.fc.weight.data[1] = 0
    with pytest.raises(ValueError, match=r'rows \[1\] have zero norm'):
        head(_feats())


def test_logit_adjusted_head_exact_values(tmp_path):
    state = _linear_state()
    counts = [50, 30, 20]
    feats = _feats()
    z = feats[0] @ state['fc.weight'].T + state['fc.bias']
    for tau in (1.0, 0.5):
        head = LogitAdjustedClsHead(num_classes=3, in_channels=4, tau=tau, class_counts=counts)
        head.load_state_dict(state)
        want = z - tau * torch.log(torch.tensor([0.5, 0.3, 0.2]))
        torch.testing.assert_close(head(feats), want, rtol=0, atol=1e-6)
    # the counts are a non-persistent buffer: not in the state dict, moved with .to()
    assert 'class_counts' not in head.state_dict()
    assert head.class_counts.dtype == torch.float64
    assert head.to(torch.device('cpu')).class_counts.tolist() == counts
    # from a counts file
    path = str(tmp_path / 'counts.json')
    ClassCounts([5, 3, 2], source='hand-made').dump(path)
    head = LogitAdjustedClsHead(num_classes=3, in_channels=4, class_counts_file=path)
    head.load_state_dict(state)
    assert head.class_counts_source == 'hand-made'
    torch.testing.assert_close(head(feats), z - torch.log(torch.tensor([0.5, 0.3, 0.2])),
                               rtol=0, atol=1e-6)


def test_logit_adjusted_head_errors(tmp_path):
    head = LogitAdjustedClsHead(num_classes=3, in_channels=4)
    assert head.class_counts is None
    with pytest.raises(RuntimeError, match='no class counts.*ClassCountsHook.*class_counts_file'):
        head(_feats())
    with pytest.raises(ValueError, match='2 class counts but 3 classes'):
        head.set_class_counts([1, 2])
    with pytest.raises(ValueError, match=r'classes \[2\] have a count that is zero'):
        head.set_class_counts([1, 2, 0])
    assert head.class_counts is None  # a failed set leaves nothing half-set
    with pytest.raises(ValueError, match='2 class counts but 3 classes'):
        LogitAdjustedClsHead(num_classes=3, in_channels=4, class_counts=[1, 2])
    path = str(tmp_path / 'counts.json')
    ClassCounts([5, 3], source='two').dump(path)
    with pytest.raises(ValueError, match='2 entries but the model has 3 classes'):
        LogitAdjustedClsHead(num_classes=3, in_channels=4, class_counts_file=path)
    with pytest.raises(ValueError, match='not both'):
        LogitAdjustedClsHead(num_classes=3, in_channels=4, class_counts=[1, 1, 1],
                             class_counts_file=path)
    with pytest.raises(RuntimeError, match='post-hoc inference head'):
        head.loss(_feats(), [DataSample().set_gt_label(0) for _ in range(5)])


# ---------------------------------------------------------------- sampler
class _Labels:
    """A data set that only has labels (get_gt_labels, or get_data_info)."""

    def __init__(self, labels, gt_labels=True):
        self.labels = list(labels)
        if gt_labels:
            self.get_gt_labels = lambda: np.asarray(self.labels)

    def __len__(self):
        return len(self.labels)

    def get_data_info(self, i):
        return dict(gt_label=self.labels[i])


# classes 0..3 with 50/10/3/1 samples, class 4 has none, class 5 one
LONG_TAIL = [0] * 50 + [1] * 10 + [2] * 3 + [3] * 1 + [5] * 1


def test_sampler_draws_classes_uniformly():
    ds = _Labels(LONG_TAIL)
    s = ClassBalancedSampler(ds, num_samples=50000, seed=3)
    assert len(s) == 50000
    idx = list(s)
    labels = np.asarray(LONG_TAIL)[idx]
    freq = np.bincount(labels, minlength=6) / len(idx)
    # 5 classes with samples: 0.2 each (3 sigma of a binomial(50000, 0.2) is 0.0054)
    assert freq[4] == 0
    np.testing.assert_allclose(freq[[0, 1, 2, 3, 5]], 0.2, atol=0.006)
    # within a class, uniform over its samples: class 2 has indices 60, 61, 62
    within = np.bincount(np.asarray(idx)[labels == 2] - 60) / (labels == 2).sum()
    np.testing.assert_allclose(within, 1 / 3, atol=0.015)
    # every index of the rare classes is drawn, none out of range
    assert set(idx) == set(range(len(LONG_TAIL)))


def test_sampler_is_deterministic_per_seed_and_epoch():
    ds = _Labels(LONG_TAIL)
    a, b = ClassBalancedSampler(ds, seed=1), ClassBalancedSampler(ds, seed=1)
    first = list(a)
    assert len(first) == len(LONG_TAIL) == len(a)  # default: len(dataset) draws
    assert first == list(b) == list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(ClassBalancedSampler(ds, seed=2)) != first
    # labels through get_data_info give the same draws
    assert list(ClassBalancedSampler(_Labels(LONG_TAIL, gt_labels=False), seed=1)) == first
    # pinned: the first draws for seed 1, epoch 0
    assert first[:8] == [17, 64, 64, 63, 63, 63, 59, 50]


@pytest.mark.parametrize('round_up', [True, False])
def test_sampler_splits_draws_over_ranks(monkeypatch, round_up):
    ds = _Labels(LONG_TAIL)
    full = ClassBalancedSampler(ds, num_samples=31 if not round_up else 33, seed=5)
    parts = []
    for rank in range(3):
        monkeypatch.setattr(samplers_mod, 'get_dist_info', lambda r=rank: (r, 3))
        s = ClassBalancedSampler(ds, num_samples=31, seed=5, round_up=round_up)
        parts.append(list(s))
        assert len(s) == len(parts[-1])
    if round_up:  # ceil(31 / 3) = 11 per rank
        assert [len(p) for p in parts] == [11, 11, 11]
    else:  # 31 dealt: 11, 10, 10
        assert [len(p) for p in parts] == [11, 10, 10]
    # rank r takes draws r, r + 3, ... of one shared sequence
    merged = [p[i] for i in range(11) for p in parts if i < len(p)]
    assert merged == list(full)


def test_sampler_logs_empty_classes_and_rejects_bad_input(capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('test_cls_peers_sampler', log_level='INFO')
    ClassBalancedSampler(_Labels(LONG_TAIL), seed=0)
    out = capsys.readouterr().out
    assert ('ClassBalancedSampler: 5 classes with samples (1 to 50 each), drawn with '
            'probability 1/5 each; 65 draws per epoch; classes [4] (1) have no sample') in out
    with pytest.raises(ValueError, match='the data set is empty'):
        ClassBalancedSampler(_Labels([]), seed=0)
    with pytest.raises(ValueError, match='num_samples must be a positive integer'):
        ClassBalancedSampler(_Labels([0, 1]), num_samples=0, seed=0)
    with pytest.raises(ValueError, match='exactly one label per sample'):
        ClassBalancedSampler(_Labels([[0, 1], [1, 0]], gt_labels=False), seed=0)
    with pytest.raises(ValueError, match='negative label'):
        ClassBalancedSampler(_Labels([0, -1]), seed=0)


def test_sampler_is_registered_for_mmpretrain_configs():
    s = DATA_SAMPLERS.build(dict(type='ClassBalancedSampler', num_samples=10),
                            default_args=dict(dataset=_Labels([0, 1, 1]), seed=0))
    assert isinstance(s, ClassBalancedSampler) and len(s) == 10


# ---------------------------------------------------------------- configs
def test_new_configs_are_all_there():
    names = sorted(osp.basename(p) for p in NEW_CONFIGS)
    assert names == [
        'fmnist-lt_resnet-s_posthoc_logit-adjust.py', 'fmnist-lt_resnet-s_posthoc_tau-norm.py',
        'fmnist-lt_resnet-s_stage2_crt.py', 'fmnist-lt_resnet-s_stage2_lws.py',
        'imagenet-lt_r50_linear_posthoc_logit-adjust.py',
        'imagenet-lt_r50_linear_posthoc_tau-norm.py', 'imagenet-lt_r50_linear_stage2_crt.py',
        'imagenet-lt_r50_linear_stage2_lws.py'
    ]
    for p in NEW_CONFIGS:  # mmengine's pkg:: regex: no dot but the .py
        assert osp.basename(p).count('.') == 1
        text = open(p).read()
        assert ('mim train mmpretrain' in text) != ('mim test mmpretrain' in text)
        assert osp.relpath(p, REPO) in text  # the command names this very file


@pytest.mark.parametrize('path', NEW_CONFIGS, ids=osp.basename)
def test_new_config_loads_builds_and_takes_a_stage1_model(path):
    from mmengine.config import Config
    name = osp.basename(path)
    s1 = Config.fromfile(osp.join(osp.dirname(path), name.split('_stage2')[0].split(
        '_posthoc')[0] + '_stage1.py'))
    cfg = Config.fromfile(path)
    head = cfg.model.head
    hooks = [h['type'] for h in cfg.custom_hooks]
    sampler = cfg.train_dataloader.sampler
    if '_stage2_' in name:
        assert cfg.load_from is None and cfg.resume is False
        assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel',
                                             find_unused_parameters=True)
        assert sampler == dict(type='ClassBalancedSampler')
        assert head.loss == dict(type='CrossEntropyLoss', loss_weight=1.0)
        assert hooks == ['ClassCountsHook', 'DisAlignFreezeHook']
        freeze = cfg.custom_hooks[1]
        opt = cfg.optim_wrapper.optimizer
        assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 0.1, 0.9, 5e-4)
        epochs = 6 if 'fmnist' in name else 10
        assert cfg.train_cfg.max_epochs == epochs
        sched = cfg.param_scheduler
        sched = sched[0] if isinstance(sched, list) else sched
        assert (sched.type, sched.T_max) == ('CosineAnnealingLR', epochs)
        if 'fmnist' in name:  # no random augmentation in stage 2
            assert cfg.train_dataloader.dataset.pipeline == [dict(type='PackInputs')]
        else:
            assert cfg.train_dataloader.batch_size * 8 == 256
        if name.endswith('_crt.py'):
            assert head.type == 'LinearClsHead'
            assert freeze == dict(type='DisAlignFreezeHook', trainable=[r'^head\.fc\.'],
                                  reinit=[r'head\.fc'])
        else:
            assert head.type == 'DisAlignLinearClsHead'
            # the DisAlign stage 2 with margin and confidence off, plain CE
            assert head.calibration == dict(alpha_init=1.0, beta_init=0.0, use_margin=False,
                                            confidence='none')
            assert head.loss == dict(type='CrossEntropyLoss', loss_weight=1.0)
            assert freeze == dict(type='DisAlignFreezeHook')
    else:
        # post-hoc: the stage-1 config with another head, test only
        assert hooks == ['ClassCountsHook']
        tau = {'tau-norm': 0.7 if 'imagenet' in name else 1.0, 'logit-adjust': 1.0}
        kind = name.split('_posthoc_')[1][:-3]
        assert head.type == {'tau-norm': 'TauNormClsHead',
                             'logit-adjust': 'LogitAdjustedClsHead'}[kind]
        assert head.tau == tau[kind]
        assert cfg.optim_wrapper == s1.optim_wrapper

    for c in (s1, cfg):
        c.model.backbone.init_cfg = None
    init_default_scope('mmpretrain')
    m1, m2 = MODELS.build(s1.model), MODELS.build(cfg.model)
    assert type(m2.head).__name__ == head.type
    res = m2.load_state_dict(m1.state_dict(), strict=False)
    assert res.unexpected_keys == []
    assert res.missing_keys == (['head.fc.calibration.alpha'] if name.endswith('_lws.py') else [])


# ---------------------------------------------------------- end to end
def _cfg(path, data_root, work_dir, max_epochs=1, **extra):
    opts = tiny_fmnist_options(data_root, work_dir, max_epochs)
    opts.update(extra)
    cfg = load_cfg(path, opts)
    fix_schedule(cfg, max_epochs)
    return cfg


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    root = make_fmnist(str(tmp_path_factory.mktemp('fmnist')))
    work = str(tmp_path_factory.mktemp('stage1'))
    Runner.from_cfg(_cfg(FMNIST_STAGE1, root, work)).train()
    ckpt = osp.join(work, 'epoch_1.pth')
    return root, ckpt


class _Record(Hook):
    """The classifier when training starts, and every training label."""
    priority = 'LOWEST'

    def __init__(self):
        self.labels = []

    def before_train(self, runner):
        self.fc = {k: v.clone() for k, v in runner.model.head.fc.state_dict().items()}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.labels += [int(d.gt_label) for d in data_batch['data_samples']]


def _ckpt_state(path):
    return _load_checkpoint(path, map_location='cpu')['state_dict']


def _check_balanced(runner, rec):
    sampler = runner.train_loop.dataloader.sampler
    assert isinstance(sampler, ClassBalancedSampler)
    assert len(rec.labels) == sum(TINY_COUNTS)  # one epoch = len(dataset) draws
    freq = np.bincount(rec.labels, minlength=10) / len(rec.labels)
    # the rarest class (4 of 159 images, 2.5%) is drawn ~1/10 of the time
    assert freq[9] > 0.05 and freq[0] < 0.2, freq


def test_crt_retrains_a_reinitialised_classifier_only(stage1, tmp_path):
    root, ckpt = stage1
    rec = _Record()
    runner = Runner.from_cfg(_cfg(CRT, root, str(tmp_path), load_from=ckpt))
    runner.register_hook(rec)
    runner.train()
    before, after = _ckpt_state(ckpt), runner.model.state_dict()
    assert set(after) == set(before)
    for k, v in before.items():  # backbone weights and BN statistics: frozen
        if not k.startswith('head.fc.'):
            assert torch.equal(after[k], v), k
    # fc was re-initialised before training (not the stage-1 one), then trained
    for k in ('weight', 'bias'):
        assert not torch.equal(rec.fc[k], before[f'head.fc.{k}'])
        assert not torch.equal(after[f'head.fc.{k}'], rec.fc[k])
    _check_balanced(runner, rec)
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert "re-initialised ['head.fc'] with reset_parameters()" in log
    assert 'ClassBalancedSampler: 10 classes with samples (4 to 40 each)' in log
    assert 'DisAlignFreezeHook: 2 parameter tensors (170 of ' in log


def test_lws_trains_only_the_class_scales(stage1, tmp_path):
    root, ckpt = stage1
    rec = _Record()
    runner = Runner.from_cfg(_cfg(LWS, root, str(tmp_path), load_from=ckpt))
    runner.register_hook(rec)
    runner.train()
    before, after = _ckpt_state(ckpt), runner.model.state_dict()
    assert sorted(set(after) - set(before)) == ['head.fc.calibration.alpha']
    for k, v in before.items():  # the classifier too: only its scales train
        assert torch.equal(after[k], v), k
    torch.testing.assert_close(rec.fc['weight'], before['head.fc.weight'], rtol=0, atol=0)
    assert not torch.equal(after['head.fc.calibration.alpha'], torch.ones(10))
    assert [n for n, p in runner.model.named_parameters()
            if p.requires_grad] == ['head.fc.calibration.alpha']
    _check_balanced(runner, rec)


def _manual_features(root, ckpt):
    """Test-set features of the stage-1 model and its fc, by hand."""
    cfg = _cfg(FMNIST_STAGE1, root, 'unused')
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    state = _ckpt_state(ckpt)
    model.load_state_dict(state)
    model.eval()
    ds = DATASETS.build(cfg.test_dataloader.dataset)
    batch = default_collate([ds[i] for i in range(len(ds))])
    with torch.no_grad():
        feats = model.extract_feat(model.data_preprocessor(batch, False)['inputs'])[-1]
    return feats, state['head.fc.weight'], state['head.fc.bias']


def _dumped_scores(path):
    with open(path, 'rb') as f:
        preds = pickle.load(f)
    preds = sorted(preds, key=lambda p: p['sample_idx'])
    return torch.stack([p['pred_score'] for p in preds]), [int(p['pred_label']) for p in preds]


def test_tau_norm_posthoc_test_equals_manual(stage1, tmp_path):
    root, ckpt = stage1
    out = str(tmp_path / 'preds.pkl')
    cfg = _cfg(TAU_NORM, root, str(tmp_path), load_from=ckpt)
    cfg.test_evaluator = [cfg.test_evaluator, dict(type='DumpResults', out_file_path=out)]
    metrics = Runner.from_cfg(cfg).test()
    assert 'accuracy/few' in metrics
    feats, w, _ = _manual_features(root, ckpt)
    want = F.softmax(feats @ (w / w.norm(dim=1, keepdim=True)).T, dim=1)
    scores, labels = _dumped_scores(out)
    torch.testing.assert_close(scores, want, rtol=0, atol=1e-6)
    assert labels == want.argmax(1).tolist()


def test_logit_adjust_posthoc_through_mim_test_equals_manual(stage1, tmp_path):
    root, ckpt = stage1
    out = str(tmp_path / 'preds.pkl')
    opts = tiny_fmnist_options(root, str(tmp_path / 'work'), 1)
    cmd = [MIM, 'test', 'mmpretrain', LOGIT_ADJ, '--checkpoint', ckpt, '--out', out,
           '--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    # ClassCountsHook counted the training set and gave the head the counts
    assert ('ClassCountsHook: 10 classes, 4 to 40 training images per class, from '
            'training set (FashionMNISTLT') in log
    assert ('logit adjustment tau=1.0: -tau*log(prior) from +1.38 (most frequent) to '
            '+3.683 (rarest)') in log
    feats, w, b = _manual_features(root, ckpt)
    prior = torch.tensor(TINY_COUNTS, dtype=torch.float64) / sum(TINY_COUNTS)
    want = F.softmax(feats @ w.T + b - torch.log(prior).float(), dim=1)
    scores, labels = _dumped_scores(out)
    torch.testing.assert_close(scores, want, rtol=0, atol=1e-6)
    assert labels == want.argmax(1).tolist()
    # and not the plain stage-1 predictions
    assert not torch.allclose(scores, F.softmax(feats @ w.T + b, dim=1), atol=1e-3)


def test_logit_adjust_counts_must_agree_with_the_metric(stage1, tmp_path):
    root, ckpt = stage1
    cfg = _cfg(LOGIT_ADJ, root, str(tmp_path), load_from=ckpt,
               **{'model.head.class_counts': [5] * 10})
    cfg.test_evaluator.class_counts = [6] * 10
    with pytest.raises(ValueError, match='LogitAdjustedClsHead .* different class counts'):
        Runner.from_cfg(cfg).test()
