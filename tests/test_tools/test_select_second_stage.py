"""tools/select_second_stage.py on a classifier and data set it has never
seen: an image-folder data set (mmpretrain's CustomDataset) and a config
written here. The table it writes is what `mim test` of the exported config
and checkpoint gives, and `mim train` of the exported config from the images
ends where the cached path ended."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from disalign_mm.engine.per_class import load_per_class
from disalign_mm.second_stage.methods import Schedule
from disalign_mm.second_stage.select import Settings, select_second_stage
from tests.test_cls.fixtures import MIM, REPO
from tests.test_tools.folder_data import (CLASSES, TRAIN, make_folder_dataset, stage1_config,
                                          train_stage1)

pytestmark = pytest.mark.slow  # Runner, mim and subprocess runs


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    """The user's stage 1: their config (data_preprocessor inside the model)
    and image folders, trained by a Runner."""
    root = make_folder_dataset(str(tmp_path_factory.mktemp('shapes')))
    work = tmp_path_factory.mktemp('stage1')
    cfg_file = work / 'my_stage1.py'
    cfg_file.write_text(stage1_config(root, 'in-model'))
    return str(cfg_file), train_stage1(str(cfg_file), str(work))


@pytest.fixture(scope='module')
def selected(stage1, tmp_path_factory):
    cfg_file, ckpt = stage1
    work = str(tmp_path_factory.mktemp('select'))
    settings = Settings(val_per_class=3, schedule=Schedule(epochs=3), quick=True,
                        export='disalign', many_thr=15, few_thr=6)
    lines = []
    result = select_second_stage(cfg_file, ckpt, work, settings, log=lines.append)
    return cfg_file, ckpt, work, result, lines


def test_table_split_and_per_class_results(selected):
    _, _, work, result, lines = selected
    assert set(result['methods']) == {'disalign', 'crt', 'lws', 'taunorm', 'logitadj'}
    assert result['meta']['classes'] == list(CLASSES)
    assert result['meta']['train_counts'] == list(TRAIN)
    # 3 held out per class; the class of 4 images gives 2 and is named
    split = json.load(open(osp.join(work, 'split.json')))
    assert split['val_counts'] == [3, 3, 3, 2] and split['reduced'] == {'3': 2}
    assert any('square (2)' in line for line in lines)
    table = open(osp.join(work, 'results.md')).read()
    for m in result['methods'].values():
        t = m['test']
        assert f'| {m["name"]}' in table and f'{t["top1"]:.2f}' in table
        assert {'top1', 'many', 'medium', 'few', 'mean_class'} <= set(t)
    assert '**(exported)**' in table
    rec = load_per_class(osp.join(work, 'per_class', 'disalign.json'))
    assert rec['task'] == 'classification' and rec['classes'] == list(CLASSES)
    assert rec['per_class']['accuracy'] == result['methods']['disalign']['per_class']


def _mim_test(cfg: str, ckpt: str, work: str) -> str:
    proc = subprocess.run([MIM, 'test', 'mmpretrain', cfg, '--checkpoint', ckpt, '--work-dir',
                           work], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return proc.stdout + proc.stderr


def test_mim_test_of_the_export_gives_the_tables_accuracy(selected, tmp_path):
    _, _, work, result, _ = selected
    exported = result['exported']
    assert exported['method'] == 'disalign'
    out = _mim_test(exported['config'], exported['checkpoint'], str(tmp_path))
    m = re.search(r'accuracy/top1: (\d+\.\d+)', out)
    assert m, out[-3000:]
    assert float(m.group(1)) == pytest.approx(result['methods']['disalign']['test']['top1'],
                                              abs=1e-3)
    assert 'DisAlign (test' in out  # the stage-2 report of what the calibration did


def test_mim_train_of_the_export_ends_where_the_cache_did(selected, tmp_path):
    """No random augmentation in stage 2: training the exported config from
    the images gives the parameters of the exported checkpoint (to float
    rounding of the cached logits)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    _, _, _, result, _ = selected
    cfg = Config.fromfile(result['exported']['config'])
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    got = runner.model.state_dict()
    want = torch.load(result['exported']['checkpoint'], weights_only=True)['state_dict']
    assert set(got) == set(want)
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, rtol=1e-4, atol=1e-5, msg=k)
    moved = [k for k in want if 'calibration' in k and not k.endswith(('feature_count', ))]
    assert moved


def test_inference_api_loads_the_export(selected):
    from mmpretrain import ImageClassificationInferencer
    cfg_file, _, _, result, _ = selected
    exported = result['exported']
    inferencer = ImageClassificationInferencer(exported['config'],
                                               pretrained=exported['checkpoint'])
    root = re.search(r"data_root='([^']+)'", open(cfg_file).read()).group(1)
    img = osp.join(root, 'test', 'ring', '000.png')
    (pred, ) = inferencer(img)
    assert pred['pred_class'] in CLASSES and len(pred['pred_scores']) == 4


def test_cli_and_stale_cache(stage1, tmp_path):
    """The command line prints the table; a second run reuses the cache; a
    retrained checkpoint is detected and its outputs recomputed."""
    cfg_file, ckpt = stage1
    work = str(tmp_path / 'cli')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'select_second_stage.py'), cfg_file, ckpt,
           '--work-dir', work, '--methods', 'disalign', 'logitadj', '--quick', '--epochs', '1',
           '--val-per-class', '2', '--many-thr', '15', '--few-thr', '6', '--export', 'none']
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert '| DisAlign |' in out.stdout and '| Logit adjustment (post-hoc) |' in out.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert 'reusing the stage-1 outputs' in again.stdout
    state = torch.load(ckpt, weights_only=False)
    state['state_dict']['head.fc.bias'] += 1
    other = str(tmp_path / 'retrained.pth')
    torch.save(state, other)
    cmd[3] = other
    third = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert third.returncode == 0, third.stderr[-3000:]
    assert 'were made from another checkpoint: computing them again' in third.stdout
    bad = subprocess.run(cmd[:2] + [cfg_file, str(tmp_path / 'missing.pth')] + cmd[4:],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert bad.returncode != 0 and 'does not exist' in bad.stderr
