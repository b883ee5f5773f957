"""DisAlignFreezeHook on a real Runner: the representation stays bit-identical."""
import glob

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner.checkpoint import _load_checkpoint

from tests.tiny_runner import TinyData, TinyModel, make_runner, val_options

pytestmark = pytest.mark.slow  # Runner runs

FREEZE = dict(type='DisAlignFreezeHook')
CALIB = ('fc.calibration.alpha', 'fc.calibration.beta', 'fc.calibration.confidence.weight',
         'fc.calibration.confidence.bias')
STATS = ('fc.calibration.feature_mean', 'fc.calibration.feature_std',
         'fc.calibration.feature_count', 'fc.calibration.logit_rms', 'fc.calibration.logit_count')


@pytest.fixture(scope='module')
def stage1_ckpt(tmp_path_factory):
    work = tmp_path_factory.mktemp('stage1')
    make_runner(work, model=TinyModel(disalign=False), max_iters=3).train()
    return str(work / 'iter_3.pth')


def test_stage2_trains_only_calibration(stage1_ckpt, tmp_path):
    runner = make_runner(tmp_path, max_iters=6, hooks=[FREEZE], load_from=stage1_ckpt,
                         log_level='INFO')
    runner.train()
    stage1 = _load_checkpoint(stage1_ckpt)['state_dict']
    after = runner.model.state_dict()
    frozen = [k for k in after if '.calibration.' not in k]
    # every frozen weight and every BatchNorm buffer is bit-identical
    assert 'backbone.1.running_mean' in frozen and 'backbone.1.num_batches_tracked' in frozen
    for k in frozen:
        assert torch.equal(after[k], stage1[k]), k
    # the calibration moved away from the identity it started at
    assert not torch.equal(after['fc.calibration.alpha'], torch.ones(3))
    assert not torch.equal(after['fc.calibration.beta'], torch.zeros(3))
    assert after['fc.calibration.confidence.weight'].abs().sum() > 0
    assert after['fc.calibration.confidence.bias'].abs().sum() > 0
    # frozen modules stayed in eval mode, the calibration in train mode
    assert not runner.model.backbone.training
    assert runner.model.fc.calibration.training
    assert [n for n, p in runner.model.named_parameters() if p.requires_grad] == list(CALIB)
    log = open(glob.glob(f'{runner.log_dir}/*.log')[0]).read()
    assert 'DisAlignFreezeHook: 4 parameter tensors (15 of 98 values' in log


def test_trainable_patterns(stage1_ckpt, tmp_path):
    runner = make_runner(tmp_path, max_iters=2, load_from=stage1_ckpt,
                         hooks=[dict(type='DisAlignFreezeHook', trainable=[r'^fc\.'])])
    runner.train()
    stage1 = _load_checkpoint(stage1_ckpt)['state_dict']
    assert not torch.equal(runner.model.fc.weight, stage1['fc.weight'])
    assert torch.equal(runner.model.backbone[0].weight, stage1['backbone.0.weight'])


def test_stage2_without_checkpoint_fails(tmp_path):
    runner = make_runner(tmp_path, max_iters=2, hooks=[FREEZE])
    with pytest.raises(RuntimeError, match='set load_from to the stage-1 checkpoint'):
        runner.train()


def test_nothing_or_everything_trainable_fails(stage1_ckpt, tmp_path):
    runner = make_runner(tmp_path / 'a', model=TinyModel(disalign=False), hooks=[FREEZE],
                         load_from=stage1_ckpt)
    with pytest.raises(RuntimeError, match='no DisAlign calibration module'):
        runner.train()
    runner = make_runner(tmp_path / 'b', load_from=stage1_ckpt,
                         hooks=[dict(type='DisAlignFreezeHook', trainable=['.'])])
    with pytest.raises(RuntimeError, match='every parameter of the model would train'):
        runner.train()
    runner = make_runner(tmp_path / 'c', load_from=stage1_ckpt,
                         hooks=[dict(type='DisAlignFreezeHook', trainable=['nope'])])
    with pytest.raises(RuntimeError, match='no parameter name matches'):
        runner.train()


def test_resume_of_a_stage1_checkpoint_is_refused(stage1_ckpt, tmp_path):
    runner = make_runner(tmp_path, hooks=[FREEZE], load_from=stage1_ckpt, resume=True)
    with pytest.raises(RuntimeError, match='it is a stage-1 checkpoint'):
        runner.train()


def test_interrupted_stage2_resumes_to_the_same_calibration(stage1_ckpt, tmp_path):
    full = make_runner(tmp_path / 'full', max_iters=6, hooks=[FREEZE], load_from=stage1_ckpt)
    full.train()
    make_runner(tmp_path / 'cut', max_iters=3, hooks=[FREEZE], load_from=stage1_ckpt).train()
    # "--resume" with no path: load_from None, the latest stage-2 checkpoint
    resumed = make_runner(tmp_path / 'cut', max_iters=6, hooks=[FREEZE], resume=True,
                          log_level='INFO')
    resumed.train()
    assert resumed.iter == 6
    for name in CALIB + STATS:
        torch.testing.assert_close(resumed.model.state_dict()[name],
                                   full.model.state_dict()[name], rtol=0, atol=0)
    # the statistics came from the resumed checkpoint, not from a new pass
    log = open(glob.glob(f'{resumed.log_dir}/*.log')[0]).read()
    assert 'standardises its' not in log and 'is conditioned with' not in log


def test_stage2_fixes_the_confidence_statistics_from_training_features(stage1_ckpt, tmp_path):
    runner = make_runner(tmp_path, max_iters=3, hooks=[FREEZE], load_from=stage1_ckpt,
                         log_level='INFO')
    runner.train()
    cal = runner.model.fc.calibration
    data = TinyData()
    with torch.no_grad():  # the frozen backbone, in eval mode, on every training sample
        feats = runner.model.backbone(data.x)
    assert float(cal.feature_count) == len(data)  # 8 batches of 8 <= feature_stats_iters
    torch.testing.assert_close(cal.feature_mean, feats.mean(0))
    torch.testing.assert_close(cal.feature_std, feats.std(0, unbiased=False))
    # and the RMS of the stage-1 logits that conditions the magnitude
    logits = torch.nn.functional.linear(feats, runner.model.fc.weight, runner.model.fc.bias)
    assert float(cal.logit_count) == len(data)
    torch.testing.assert_close(cal.logit_rms, logits.pow(2).mean(0).sqrt())
    saved = _load_checkpoint(str(tmp_path / 'iter_3.pth'))['state_dict']
    assert torch.equal(saved['fc.calibration.feature_mean'], cal.feature_mean)
    assert torch.equal(saved['fc.calibration.logit_rms'], cal.logit_rms)
    log = open(glob.glob(f'{runner.log_dir}/*.log')[0]).read()
    assert ('confidence of fc.calibration standardises its 8 input channels with statistics '
            'of 64 training feature vectors: std ') in log
    assert ('magnitude of fc.calibration is conditioned with the RMS of its 3 stage-1 logits '
            'over 64 training logit vectors') in log
    assert '(8 batches per rank)' in log
    with pytest.raises(ValueError, match='feature_stats_iters must be >= 1'):
        make_runner(tmp_path / 'bad', hooks=[dict(FREEZE, feature_stats_iters=0)]).train()


# ---- reinit: cRT re-initialises the classifier after loading stage 1 ----
CRT = dict(type='DisAlignFreezeHook', trainable=[r'^fc\.'], reinit=[r'fc'])


class _Snapshot(Hook):
    """Records the classifier when training starts (after every other hook's
    before_train)."""
    priority = 'LOWEST'

    def before_train(self, runner):
        self.fc = {k: v.clone() for k, v in runner.model.fc.state_dict().items()}


def test_reinit_resets_the_classifier_after_loading(stage1_ckpt, tmp_path):
    snap = _Snapshot()
    runner = make_runner(tmp_path, model=TinyModel(disalign=False), max_iters=3,
                         hooks=[CRT], load_from=stage1_ckpt, log_level='INFO')
    runner.register_hook(snap)
    runner.train()
    stage1 = _load_checkpoint(stage1_ckpt)['state_dict']
    # at the start of training: the backbone is stage 1's, fc is new ...
    assert not torch.equal(snap.fc['weight'], stage1['fc.weight'])
    assert not torch.equal(snap.fc['bias'], stage1['fc.bias'])
    # ... drawn by nn.Linear.reset_parameters: |w| <= 1/sqrt(fan_in)
    assert snap.fc['weight'].abs().max() <= 8 ** -0.5
    after = runner.model.state_dict()
    for k in stage1:
        if not k.startswith('fc.'):
            assert torch.equal(after[k], stage1[k]), k
    assert not torch.equal(after['fc.weight'], snap.fc['weight'])  # and then trained
    log = open(glob.glob(f'{runner.log_dir}/*.log')[0]).read()
    assert "DisAlignFreezeHook: re-initialised ['fc'] with reset_parameters()" in log
    ckpt = _load_checkpoint(str(tmp_path / 'iter_3.pth'))
    assert ckpt['meta']['disalign_mm_reinit'] == ['fc']


def test_reinit_is_not_repeated_on_resume(stage1_ckpt, tmp_path):
    tiny = dict(model=TinyModel(disalign=False), load_from=stage1_ckpt)
    full = make_runner(tmp_path / 'full', max_iters=6, hooks=[CRT], **tiny)
    full.train()
    tiny = dict(model=TinyModel(disalign=False), load_from=stage1_ckpt)
    make_runner(tmp_path / 'cut', max_iters=3, hooks=[CRT], **tiny).train()
    resumed = make_runner(tmp_path / 'cut', model=TinyModel(disalign=False), max_iters=6,
                          hooks=[CRT], resume=True)
    resumed.train()
    assert resumed.iter == 6
    torch.testing.assert_close(resumed.model.fc.weight, full.model.fc.weight, rtol=0, atol=0)


def test_reinit_refuses_to_resume_a_stage1_checkpoint(stage1_ckpt, tmp_path):
    runner = make_runner(tmp_path, model=TinyModel(disalign=False), hooks=[CRT],
                         load_from=stage1_ckpt, resume=True)
    with pytest.raises(RuntimeError, match='resume=True with reinit.*set resume=False'):
        runner.train()


def test_reinit_bad_patterns(stage1_ckpt, tmp_path):
    hook = dict(CRT, reinit=['head\\.fc'])
    runner = make_runner(tmp_path / 'a', model=TinyModel(disalign=False), hooks=[hook],
                         load_from=stage1_ckpt)
    with pytest.raises(RuntimeError, match=r"reinit pattern 'head\\\\.fc' matches no module.*"
                       r"'backbone.3', 'fc', 'loss_module'"):
        runner.train()
    # fullmatch: 'f' does not match 'fc'
    runner = make_runner(tmp_path / 'b', model=TinyModel(disalign=False),
                         hooks=[dict(CRT, reinit=['f'])], load_from=stage1_ckpt)
    with pytest.raises(RuntimeError, match="'f' matches no module"):
        runner.train()
    runner = make_runner(tmp_path / 'c', model=TinyModel(disalign=False),
                         hooks=[dict(CRT, reinit=['backbone'])], load_from=stage1_ckpt)
    with pytest.raises(RuntimeError, match=r"reinit matched \['backbone'\] \(Sequential\), "
                       'which have no reset_parameters'):
        runner.train()


def test_validation_reports_what_the_calibration_did(stage1_ckpt, tmp_path):
    # 12 iterations: enough for some decision to change on both tested stacks (with 3,
    # torch 2.1 changed none)
    opts = dict(val_options(), train_cfg=dict(by_epoch=False, max_iters=12, val_interval=12))
    runner = make_runner(tmp_path, hooks=[FREEZE], load_from=stage1_ckpt, log_level='INFO',
                         **opts)
    runner.train()
    hook = next(h for h in runner._hooks if type(h).__name__ == 'DisAlignFreezeHook')
    report = hook.reports['val']
    assert report['inputs'] == len(TinyData())
    scalars = runner.message_hub.log_scalars
    for key in ('changed', 'sigma_mean', 'sigma_low', 'sigma_high'):
        assert scalars[f'val/disalign/{key}'].current() == report[key]
    assert 0 < report['sigma_mean'] < 1
    log = open(glob.glob(f'{runner.log_dir}/*.log')[0]).read()
    assert f'DisAlign (val, {len(TinyData())} classified inputs): ' in log
    assert 'stage 2 changed nothing' not in log

    # a saturated confidence and an unchanged model are said out loud
    with torch.no_grad():
        runner.model.fc.calibration.confidence.bias.fill_(-50.0)
    runner.val()
    assert hook.reports['val']['sigma_low'] == 1.0 and hook.reports['val']['changed'] == 0
    log = open(glob.glob(f'{runner.log_dir}/*.log')[0]).read()
    assert 'confidence sigma is saturated (near 0) on 100.0% of the val inputs' in log
    assert 'no val decision differs from the stage-1 model: stage 2 changed nothing' in log
