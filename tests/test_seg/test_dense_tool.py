"""The peers on ADE20K end to end, on the tiny ADE20K-format fixture with the
shipped configs shrunk: logit adjustment's tau chosen by
``tools/select_dense_second_stage.py`` from the cached decode-head logits
equals ``mim test`` of the config it writes (mIoU and Head / Body / Tail to
1e-3), and the shipped logit-adjustment config equals the cache at its tau;
a class-aware split of the training set; cRT trains only the re-initialised
``conv_seg`` with class-balanced pixel weights and is a row of the table."""
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import disalign_mm.seg  # noqa: F401
from disalign_mm.second_stage.dense import DenseSettings, select_dense_second_stage
from disalign_mm.seg import ade20k_class_counts
from tests.test_seg.conftest import REPO, shrink_options, train_masks, val_masks, write_ade

pytestmark = pytest.mark.slow  # Runner / mim runs

CFG_DIR = osp.join(REPO, 'configs', 'ade20k')
STAGE1 = 'fcn_r50-d8_4xb4-160k_ade20k-512x512.py'
KEYS = ('mIoU', 'head_mIoU', 'body_mIoU', 'tail_mIoU')


def _test_masks():
    a = np.full((24, 32), 3, np.uint8)
    a[:, 20:] = 5
    a[18:] = 11
    return {'t1': val_masks()['v1'], 't2': train_masks()['b'], 't3': a}


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    """ADE20K's layout with a test split of its own (the config's validation
    and test sets are then different images)."""
    return write_ade(tmp_path_factory.mktemp('ADEChallengeData2016'),
                     {'training': train_masks(), 'validation': val_masks(),
                      'test': _test_masks()})


def config(name, opts, work_dir=None):
    cfg = Config.fromfile(osp.join(CFG_DIR, name))
    cfg.merge_from_dict(opts)
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
        cfg.visualizer.name = f'vis-{osp.basename(str(work_dir))}'
    return cfg


def options(root):
    opts = shrink_options(root)
    opts['test_dataloader.dataset.data_prefix.img_path'] = 'images/test'
    opts['test_dataloader.dataset.data_prefix.seg_map_path'] = 'annotations/test'
    return opts


@pytest.fixture(scope='module')
def stage1(root, tmp_path_factory):
    """mmseg's FCN R50-D8 ADE20K config, shrunk, 20 iterations."""
    opts = shrink_options(root)
    opts.update({'train_cfg.max_iters': 20, 'train_cfg.val_interval': 100,
                 'default_hooks.checkpoint.interval': 20})
    work = tmp_path_factory.mktemp('seg_stage1')
    Runner.from_cfg(config(STAGE1, opts, work)).train()
    return str(work / 'iter_20.pth')


@pytest.fixture(scope='module')
def crt(root, stage1, tmp_path_factory):
    opts = shrink_options(root, stage2=True)
    opts['load_from'] = stage1
    work = tmp_path_factory.mktemp('seg_crt')
    cfg = config('crt_fcn_r50-d8_8xb4-8k_ade20k-512x512.py', opts, work)
    runner = Runner.from_cfg(cfg)
    runner.train()
    path = str(work / 'crt_config.py')
    cfg.dump(path)
    return dict(runner=runner, config=path, checkpoint=str(work / 'iter_2.pth'))


def test_crt_trains_the_reinitialised_conv_seg_with_class_balanced_pixels(stage1, crt):
    s1 = torch.load(stage1, map_location='cpu', weights_only=False)['state_dict']
    s2 = torch.load(crt['checkpoint'], map_location='cpu', weights_only=False)['state_dict']
    assert set(s2) == {k for k in s1 if not k.startswith('auxiliary_head.')}
    changed = sorted(k for k in s2 if not torch.equal(s1[k], s2[k]))
    assert changed == ['decode_head.conv_seg.bias', 'decode_head.conv_seg.weight']
    model = crt['runner'].model
    loss = model.decode_head.loss_decode
    # class-balanced pixel weights: 1 / pi of the paper's table, mean 1
    pi = np.asarray(ade20k_class_counts().counts, dtype=np.float64)
    want = (1 / pi) / np.mean(1 / pi)
    np.testing.assert_allclose(loss.class_weight.double().numpy(), want, rtol=1e-5)


def mim_test(config, checkpoint, work_dir):
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([mim, 'test', 'mmseg', config, '--checkpoint', checkpoint,
                           '--work-dir', str(work_dir)], env=env, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    line = [ln for ln in out.splitlines() if 'head_mIoU:' in ln]
    assert line, out[-4000:]
    return {k: float(v) for k, v in re.findall(r'(\w+): (-?[\d.]+|nan)', line[-1])}


def test_logit_adjustment_chosen_from_the_cache_is_mim_test_of_the_written_config(
        root, stage1, crt, tmp_path):
    work = tmp_path / 'tool'
    result = select_dense_second_stage(
        osp.join(CFG_DIR, STAGE1), stage1, str(work),
        DenseSettings(grid=[0.05, 0.1], check_images=2,
                      compare={'cRT': (crt['config'], crt['checkpoint'])}),
        options=options(root))
    meta = result['meta']
    assert meta['counts'] == ade20k_class_counts().counts  # the paper's table for ADE20K
    assert result['self_check']['images'] == 2
    rows = {r['key']: r for r in result['rows']}
    assert set(rows) == {'stage1', 'logitadj', 'crt'} and 'mIoU' in rows['crt']['test']
    got = mim_test(result['written'], stage1, tmp_path / 'mim')
    for key in KEYS:
        want = rows['logitadj']['test'][key]
        if np.isnan(want):
            assert np.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(want, abs=1e-3), key
    assert f"'tau': {result['chosen']}" in open(result['written']).read()


def test_the_shipped_config_is_the_cache_at_its_tau(root, stage1, tmp_path):
    """The Runner's test loop (mim test) of
    logit-adjust_fcn_r50-d8_ade20k-512x512.py at tau 0.1 equals the cached
    scoring at tau 0.1, and differs from stage 1."""
    from disalign_mm.second_stage.dense import select as dense
    from disalign_mm.second_stage.dense.cache import load_model
    from disalign_mm.second_stage.dense.segmentation import SegmentationHost
    opts = dict(options(root), load_from=stage1)
    opts['model.decode_head.tau'] = 0.1
    runner = Runner.from_cfg(config('logit-adjust_fcn_r50-d8_ade20k-512x512.py', opts,
                                    tmp_path / 'la'))
    host_metrics = runner.test()
    cfg = config(STAGE1, options(root))
    counts = ade20k_class_counts().counts
    host = SegmentationHost(150, counts, [0.0, 0.1])
    model = load_model(cfg, stage1, str(tmp_path / 'r'), 'stage 1', 'cpu', check=host.check_model)
    ds = cfg.test_dataloader.dataset.to_dict()
    prepared = dense.prepare_datasets(cfg, {'test': ds})
    data = dense.cached_outputs(host, str(tmp_path / 'cache'), cfg, stage1, {'test': ds},
                                prepared, model=model, progress=False)
    metric = dict(dense.long_tail_metric(cfg.test_evaluator, None), class_counts=counts)
    metric.pop('class_counts_file')
    ev = dense.build_evaluator(metric, prepared['datasets']['test'].metainfo, 'mmseg')
    cached = dense.score(host, model, data['test'], 0.1, ev)
    for key in KEYS:
        h = float(host_metrics[key])
        assert (np.isnan(h) and np.isnan(cached[key])) or cached[key] == pytest.approx(
            h, abs=1e-3), key
    assert dense.score(host, model, data['test'], 0.0, ev)['mIoU'] != cached['mIoU']


def test_a_class_aware_split_of_the_training_set(root, stage1, tmp_path):
    result = select_dense_second_stage(
        osp.join(CFG_DIR, STAGE1), stage1, str(tmp_path / 'tool'),
        DenseSettings(val_set='held-out', val_per_class=1, grid=[0.1], check_images=0,
                      export=False),
        options=options(root))
    meta = result['meta']
    assert meta['val_seen_by_stage1'] and meta['val_images'] >= 1
    split = meta['split']
    assert split['per_class'] == 1 and osp.isfile(split['file'])
    assert 'written' not in result
