"""DisAlign's simpler second-stage peers in mmpretrain (cRT, LWS, the post-hoc
tau-normalised and logit-adjusted heads): the shipped configs, and shrunk
end-to-end runs from one tiny stage-1 checkpoint. The heads and the sampler
have their own test modules."""
import glob
import os.path as osp
import pickle
import subprocess

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import default_collate
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from mmpretrain.registry import DATASETS, MODELS

import disalign_mm.cls  # noqa: F401
from disalign_mm.cls import ClassBalancedSampler
from tests.test_cls.fixtures import (CFG_DIR, FMNIST_STAGE1, MIM, REPO, fix_schedule, load_cfg,
                                     make_fmnist, tiny_fmnist_options)

TINY_COUNTS = [40, 30, 23, 18, 14, 11, 8, 6, 5, 4]
FMNIST = osp.join(CFG_DIR, 'fashion_mnist_lt')
CRT = osp.join(FMNIST, 'crt_resnet-s_1xb128-coslr-6e_fmnist-lt.py')
LWS = osp.join(FMNIST, 'lws_resnet-s_1xb128-coslr-6e_fmnist-lt.py')
TAU_NORM = osp.join(FMNIST, 'tau-norm_resnet-s_fmnist-lt.py')
LOGIT_ADJ = osp.join(FMNIST, 'logit-adjust_resnet-s_fmnist-lt.py')
PEERS = ('crt', 'lws', 'tau-norm', 'logit-adjust')
# what LWS adds to a stage-1 model: its scales and the statistics conditioning them
LWS_KEYS = ['head.fc.calibration.alpha', 'head.fc.calibration.logit_count',
            'head.fc.calibration.logit_rms']
# the classification folders (the peers of detection and segmentation:
# tests/test_det, tests/test_seg, tests/test_configs)
CLS_FOLDERS = ('fashion_mnist_lt', 'imagenet_lt', 'inaturalist2018', 'places_lt')
ALL_PEERS = sorted(p for kind in PEERS for d in CLS_FOLDERS
                   for p in glob.glob(osp.join(CFG_DIR, d, f'{kind}_*.py')))
# the ViT-B/16 peers (generic heads over VisionTransformerClsHead) are built
# tiny by tests/test_cls/test_configs.py; the ResNet peers, full size, here
NEW_CONFIGS = [p for p in ALL_PEERS if '_vit-' not in osp.basename(p)]
STAGE1_OF_PEER = {  # the stage-1 config each peer takes its checkpoint from
    'fashion_mnist_lt': 'resnet-s_1xb128-coslr-8e_fmnist-lt.py',
    'imagenet_lt': 'resnet50_8xb32-coslr-90e_imagenet-lt.py',
}


# ---------------------------------------------------------------- configs
def test_new_configs_are_all_there():
    names = sorted(osp.basename(p) for p in NEW_CONFIGS)
    assert names == [
        'crt_resnet-s_1xb128-coslr-6e_fmnist-lt.py', 'crt_resnet50_8xb32-coslr-10e_imagenet-lt.py',
        'logit-adjust_resnet-s_fmnist-lt.py', 'logit-adjust_resnet50_imagenet-lt.py',
        'lws_resnet-s_1xb128-coslr-6e_fmnist-lt.py', 'lws_resnet50_8xb32-coslr-10e_imagenet-lt.py',
        'tau-norm_resnet-s_fmnist-lt.py', 'tau-norm_resnet50_imagenet-lt.py'
    ]
    vit = sorted(osp.basename(p) for p in ALL_PEERS if '_vit-' in osp.basename(p))
    trained = ('crt', 'lws')
    assert vit == sorted(
        f'{kind}_vit-base-p16_{pre}{"_8xb32-coslr-10e" if kind in trained else ""}_{data}.py'
        for kind in PEERS for pre, data in (('clip-pre', 'imagenet-lt'),
                                            ('clip-in1k-pre', 'places-lt')))
    for p in ALL_PEERS:  # mmengine's pkg:: regex: no dot but the .py
        assert osp.basename(p).count('.') == 1
        text = open(p).read()
        assert ('mim train mmpretrain' in text) != ('mim test mmpretrain' in text)
        assert osp.relpath(p, REPO) in text  # the command names this very file


@pytest.mark.parametrize('path', NEW_CONFIGS, ids=osp.basename)
def test_new_config_loads_builds_and_takes_a_stage1_model(path):
    from mmengine.config import Config
    name = osp.basename(path)
    folder = osp.dirname(path)
    s1 = Config.fromfile(osp.join(folder, STAGE1_OF_PEER[osp.basename(folder)]))
    kind = name.split('_')[0]
    cfg = Config.fromfile(path)
    head = cfg.model.head
    hooks = [h['type'] for h in cfg.custom_hooks]
    sampler = cfg.train_dataloader.sampler
    if kind in ('crt', 'lws'):
        assert cfg.load_from is None and cfg.resume is False
        assert cfg.model_wrapper_cfg == dict(find_unused_parameters=True)
        assert sampler == dict(type='ClassBalancedSampler')
        assert head.loss.type == 'CrossEntropyLoss'
        assert head.loss.get('loss_weight', 1.0) == 1.0
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
        if kind == 'crt':
            assert head.type == 'LinearClsHead'
            assert freeze == dict(type='DisAlignFreezeHook', trainable=[r'^head\.fc\.'],
                                  reinit=[r'head\.fc'])
        else:
            assert head.type == 'DisAlignLinearClsHead'
            # the DisAlign stage 2 with margin and confidence off, plain CE
            assert head.calibration == dict(use_margin=False, confidence='none')
            assert freeze == dict(type='DisAlignFreezeHook')
    else:
        # post-hoc: the stage-1 config with another head, test only
        assert hooks == ['ClassCountsHook']
        tau = {'tau-norm': 0.7 if 'imagenet' in name else 1.0, 'logit-adjust': 1.0}
        assert head.type == {'tau-norm': 'TauNormClsHead',
                             'logit-adjust': 'LogitAdjustedClsHead'}[kind]
        assert head.get('tau', 1.0) == tau[kind]  # 1.0: the heads' default
        assert cfg.optim_wrapper == s1.optim_wrapper

    for c in (s1, cfg):
        c.model.backbone.init_cfg = None
    init_default_scope('mmpretrain')
    m1, m2 = MODELS.build(s1.model), MODELS.build(cfg.model)
    assert type(m2.head).__name__ == head.type
    res = m2.load_state_dict(m1.state_dict(), strict=False)
    assert res.unexpected_keys == []
    # LWS: only its scale (and the logit statistics that condition it) is new;
    # cRT and the post-hoc heads: nothing
    assert sorted(res.missing_keys) == (LWS_KEYS if kind == 'lws' else [])


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_lws_trains_only_the_class_scales(stage1, tmp_path):
    root, ckpt = stage1
    rec = _Record()
    runner = Runner.from_cfg(_cfg(LWS, root, str(tmp_path), load_from=ckpt))
    runner.register_hook(rec)
    runner.train()
    before, after = _ckpt_state(ckpt), runner.model.state_dict()
    assert sorted(set(after) - set(before)) == sorted(LWS_KEYS)
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_logit_adjust_counts_must_agree_with_the_metric(stage1, tmp_path):
    root, ckpt = stage1
    cfg = _cfg(LOGIT_ADJ, root, str(tmp_path), load_from=ckpt,
               **{'model.head.class_counts': [5] * 10})
    cfg.test_evaluator.class_counts = [6] * 10
    with pytest.raises(ValueError, match='LogitAdjustedClsHead .* different class counts'):
        Runner.from_cfg(cfg).test()
