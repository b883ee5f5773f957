"""End to end on the tiny ADE20K fixture: the shipped ADE20K configs (mmseg's
own models, shrunk), stage 1 -> stage 2 through the real Runner, and
``mim train mmseg <stage-2 config>``."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

import disalign_mm.seg  # noqa: F401
from tests.calibration_keys import calibration_keys

pytestmark = pytest.mark.slow  # Runner/mim/pip runs: integration, not the unit loop

CFG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                   'configs', 'ade20k')
CALIB = calibration_keys('decode_head.conv_seg.calibration.', buffers=False)
CALIB_STATE = calibration_keys('decode_head.conv_seg.calibration.')


def config(name, opts, work_dir, **extra):
    cfg = Config.fromfile(osp.join(CFG_DIR, name))
    cfg.merge_from_dict(opts)
    cfg.merge_from_dict(extra)
    cfg.work_dir = str(work_dir)
    cfg.visualizer.name = f'vis-{osp.basename(str(work_dir))}'
    return cfg


def test_stage1_to_stage2_through_the_runner(ade_root, tmp_path, shrink):
    s1 = config('fcn_r50-d8_4xb4-160k_ade20k-512x512.py', shrink(ade_root), tmp_path / 's1')
    assert s1.model.decode_head.type == 'FCNHead'  # mmseg's own model
    Runner.from_cfg(s1).train()
    ckpt1 = str(tmp_path / 's1' / 'iter_2.pth')
    state1 = _load_checkpoint(ckpt1, map_location='cpu')['state_dict']
    assert any(k.startswith('auxiliary_head.') for k in state1)

    s2 = config('disalign_fcn_r50-d8_8xb4-8k_ade20k-512x512.py', shrink(ade_root, stage2=True),
                tmp_path / 's2', load_from=ckpt1)
    assert s2.train_cfg.max_iters == 2 and s2.model.auxiliary_head is None
    runner = Runner.from_cfg(s2)
    model = runner.train()
    state2 = model.state_dict()
    assert not model.with_auxiliary_head
    assert sorted(k for k in state2 if k not in state1) == CALIB_STATE
    # the stage-1 model is frozen: weights and BN statistics unchanged
    for k, v in state2.items():
        if k not in CALIB_STATE:
            assert torch.equal(v, state1[k]), k
    cal = model.decode_head.conv_seg.calibration
    assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == CALIB
    assert (cal.alpha - 1).abs().max() > 0 and cal.beta.abs().max() > 0
    assert cal.confidence.weight.abs().max() > 0
    state2_saved = _load_checkpoint(str(tmp_path / 's2' / 'iter_2.pth'),
                                    map_location='cpu')['state_dict']
    torch.testing.assert_close(state2_saved[CALIB[0]], cal.alpha.detach())
    metrics = runner.val()
    for key in ('mIoU', 'mAcc', 'aAcc', 'head_mIoU', 'body_mIoU', 'tail_mIoU', 'head_mAcc',
                'body_mAcc', 'tail_mAcc'):
        assert key in metrics
    # the metric's per-class JSON, with DisAlignFreezeHook's report of that val run
    with open(osp.join(runner.log_dir, 'per_class_iou.json')) as f:
        pc = json.load(f)
    assert pc['task'] == 'segmentation' and len(pc['per_class']['IoU']) == 150
    assert pc['metrics']['mIoU'] == pytest.approx(float(metrics['mIoU']))
    assert pc['disalign']['inputs'] > 0


def _fmt(v):
    return str(v).replace(' ', '') if not isinstance(v, str) else v


def test_mim_train_stage2_config(ade_root, tmp_path, shrink):
    """A model-zoo-like stage-1 file ({'meta', 'state_dict'} of mmseg's own
    DeepLabV3+), then ``mim train mmseg`` on the stage-2 config."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    opts = shrink(ade_root, deeplab=True)
    s1 = config('deeplabv3plus_r50-d8_4xb4-160k_ade20k-512x512.py', opts, tmp_path / 'z')
    torch.manual_seed(0)
    model = MODELS.build(s1.model)
    model.init_weights()
    ckpt = str(tmp_path / 'deeplabv3plus_stage1.pth')
    torch.save({'meta': {'CLASSES': 'ADE20K'}, 'state_dict': model.state_dict()}, ckpt)

    opts = shrink(ade_root, deeplab=True, stage2=True)
    opts['load_from'] = ckpt
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    cmd = [mim, 'train', 'mmseg',
           osp.join(CFG_DIR, 'disalign_deeplabv3plus_r50-d8_8xb4-8k_ade20k-512x512.py'),
           '--gpus', '0', '--work-dir', str(tmp_path / 'work'), '--cfg-options'] + \
        [f'{k}={_fmt(v)}' for k, v in opts.items()]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [osp.dirname(osp.dirname(CFG_DIR)), os.environ.get('PYTHONPATH', '')]))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env,
                         cwd=str(tmp_path))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert 'DisAlignFreezeHook: 4 parameter tensors' in out
    assert re.search(r'Iter\(train\) \[2/2\].*loss_grw: [0-9.]+', out), out[-3000:]
    assert 'Head/Body/Tail results:' in out
    table = out[out.index('Head/Body/Tail results:'):].split('\n', 1)[1]
    rows = [ln for ln in table.splitlines()[:8] if ln.startswith('|')]
    assert [r.split('|')[1].strip() for r in rows] == ['Group', 'All', 'Head', 'Body', 'Tail']
    assert [r.split('|')[2].strip() for r in rows[1:]] == ['150', '20', '55', '75']
    print('\n'.join(table.splitlines()[:8]))
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')


def test_stage2_refuses_a_checkpoint_of_another_label_set(ade_root, tmp_path, shrink):
    from mmseg.registry import MODELS
    s1 = config('fcn_r50-d8_4xb4-160k_ade20k-512x512.py', shrink(ade_root), tmp_path / 's1')
    s1.model.decode_head.num_classes = 7
    s1.model.auxiliary_head.num_classes = 7
    other = str(tmp_path / 'other_model.pth')
    torch.save({'state_dict': MODELS.build(s1.model).state_dict(), 'meta': {}}, other)
    s2 = config('disalign_fcn_r50-d8_8xb4-8k_ade20k-512x512.py', shrink(ade_root, stage2=True),
                tmp_path / 's2', load_from=other)
    with pytest.raises(RuntimeError, match=r'have another shape \(decode_head\.conv_seg\.weight: '
                       r'checkpoint \(7, 8, 1, 1\) vs model'):
        Runner.from_cfg(s2).train()
