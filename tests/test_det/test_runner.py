"""Stage 1 -> stage 2 through the real mmengine Runner on CPU, with the
shipped LVIS configs shrunk to a tiny model (ResNet-18 with 8 base channels,
5 classes, 128x96 images) and the LVIS-format fixture; and the same
stage-2 config through ``mim train mmdet``."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

import disalign_mm.det  # noqa: F401
from disalign_mm.core import grw_weights
from disalign_mm.engine.per_class import load_per_class
from tests.calibration_keys import calibration_keys
from tests.test_det.fixtures import (IMAGE_COUNT, REPO, config_path, load_config, tiny_options,
                                     to_cli)

pytestmark = pytest.mark.slow  # Runner/mim/pip runs: integration, not the unit loop

V = 'v1'
STAGE1 = 'mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
STAGE2 = 'disalign_mask-rcnn_r50_fpn_ms-9k_lvis-v1.py'


def _run(cfg, work_dir, name):
    from mmengine.runner import Runner
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name
    cfg.log_level = 'WARNING'
    cfg.visualizer.name = f'visualizer_{name}'
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.fixture(scope='session')
def stage1_ckpt(lvis_data, tmp_path_factory):
    """Stage 1 (mmdet's own LVIS Mask R-CNN config, shrunk): one epoch of
    the 4 fixture images, 2 iterations, no validation."""
    opts = tiny_options(lvis_data, V)
    opts.update({'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 100})
    cfg = load_config(V, STAGE1, opts)
    work = tmp_path_factory.mktemp('stage1')
    _run(cfg, work, 'det_stage1')
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    return ckpt


def stage2_options(lvis_data, ckpt, iters=2):
    opts = tiny_options(lvis_data, V, repeat_factor=False)
    opts.update({
        'load_from': ckpt,
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': iters,
        'default_hooks.checkpoint.interval': iters,
        # no warm-up: at lr 2e-5 two steps would not move alpha visibly
        'param_scheduler.0.start_factor': 1.0,
    })
    return opts


def test_stage1_to_stage2_runner(lvis_data, stage1_ckpt, tmp_path):
    cfg = load_config(V, STAGE2, stage2_options(lvis_data, stage1_ckpt))
    runner = _run(cfg, tmp_path, 'det_stage2')
    model = runner.model
    head = model.roi_head.bbox_head
    # GRW weights from the training annotation's image_count, background 1
    torch.testing.assert_close(head.loss_cls.class_weight,
                               torch.cat([grw_weights(IMAGE_COUNT, 0.8), torch.ones(1)]))
    s1 = torch.load(stage1_ckpt, map_location='cpu', weights_only=False)['state_dict']
    s2 = torch.load(osp.join(tmp_path, 'iter_2.pth'), map_location='cpu',
                    weights_only=False)['state_dict']
    calib = {k for k in s2 if '.calibration.' in k}
    assert calib == set(calibration_keys('roi_head.bbox_head.fc_cls.calibration.'))
    assert set(s2) - calib == set(s1)
    # everything of stage 1 is frozen: weights and BatchNorm statistics
    changed = [k for k in s1 if not torch.equal(s1[k], s2[k])]
    assert changed == []
    # the calibration learned
    assert not torch.equal(s2['roi_head.bbox_head.fc_cls.calibration.alpha'], torch.ones(5))
    assert not torch.equal(s2['roi_head.bbox_head.fc_cls.calibration.beta'], torch.zeros(5))
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == calibration_keys('roi_head.bbox_head.fc_cls.calibration.', buffers=False)
    # validation ran with mmdet's LVISMetric (through the numpy fix)
    scalars = runner.message_hub.log_scalars
    for k in ('bbox_AP', 'bbox_APr', 'bbox_APc', 'bbox_APf', 'segm_APr'):
        assert f'val/lvis/{k}' in scalars, sorted(scalars)
    # ... through LongTailLVISMetric, which wrote the per-category AP beside the
    # log, with LVIS's groups, ClassCountsHook's counts and the freeze hook's report
    rec = load_per_class(osp.join(runner.log_dir, 'per_class_ap.json'))
    assert rec['groups'] == {'rare': [3], 'common': [2, 4], 'frequent': [0, 1]}
    assert rec['train_counts'] == IMAGE_COUNT and rec['count_unit'] == 'images'
    assert set(rec['per_class']) == {'bbox_AP', 'segm_AP'}
    assert rec['metrics']['bbox_APr'] == scalars['val/lvis/bbox_APr'].current()
    assert 'changed' in rec['disalign']


def test_stage2_without_load_from_fails(lvis_data, tmp_path):
    opts = stage2_options(lvis_data, None)
    cfg = load_config(V, STAGE2, opts)
    with pytest.raises(RuntimeError, match='needs the stage-1 model'):
        _run(cfg, tmp_path, 'det_stage2_noload')


def test_mim_train_stage2(lvis_data, stage1_ckpt, tmp_path):
    """``mim train mmdet <stage-2 config>`` for 2 iterations on the fixture;
    prints mmdet's LVIS metric (APr / APc / APf)."""
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    opts = stage2_options(lvis_data, stage1_ckpt)
    cmd = [mim, 'train', 'mmdet', config_path(V, STAGE2), '--work-dir', str(tmp_path),
           '--cfg-options'] + to_cli(opts)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    with open(osp.join(tmp_path, 'mim_train.log'), 'w') as f:
        f.write(out)
    assert proc.returncode == 0, out[-5000:]
    assert 'DisAlignFreezeHook' in out and 'ClassCountsHook' in out
    assert 'training images per class, from ' in out and 'lvis_tiny.json (image_count)' in out
    line = [ln for ln in out.splitlines() if 'lvis/bbox_APr' in ln]
    assert line, out[-5000:]
    metrics = dict(re.findall(r'(lvis/\w+): (-?[\d.]+)', line[-1]))
    for k in ('bbox_AP', 'bbox_APr', 'bbox_APc', 'bbox_APf', 'segm_AP', 'segm_APr', 'segm_APc',
              'segm_APf'):
        assert f'lvis/{k}' in metrics, line[-1]
        assert 0.0 <= float(metrics[f'lvis/{k}']) <= 1.0
    print('\n'.join(ln for ln in out.splitlines() if 'lvis/' in ln or 'Evaluating' in ln))
    assert osp.isfile(osp.join(tmp_path, 'iter_2.pth'))


def test_stage2_refuses_a_checkpoint_of_another_label_set(lvis_data, tmp_path):
    from mmdet.registry import MODELS
    s1 = load_config(V, STAGE1, tiny_options(lvis_data, V))
    s1.model.roi_head.bbox_head.num_classes = 7
    s1.model.roi_head.mask_head.num_classes = 7
    other = str(tmp_path / 'other_model.pth')
    torch.save({'state_dict': MODELS.build(s1.model).state_dict(), 'meta': {}}, other)
    cfg = load_config(V, STAGE2, stage2_options(lvis_data, other))
    with pytest.raises(RuntimeError, match=r'have another shape \(roi_head\.bbox_head\.fc_cls\.'
                       r'weight: checkpoint \(8, '):
        _run(cfg, tmp_path, 'det_stage2_other')
