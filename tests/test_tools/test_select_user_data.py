"""The second-stage tool on a user's real data: each defect reported on
image-folder data sets (issue 23) reproduced here, on a data set and a
config written here, and what the tool does now.

- the cache notices changed images (added, removed) and says what changed;
- the config's validation set is used when it has one; a split held out of
  stage 1's training set is labelled as such, with stage 1's score on it;
- "the validation set is the test set" is found on the images, whatever the
  config spells;
- a refused checkpoint leaves the valid cache in place;
- a class without training images: the failing methods are reported, the
  others kept, and ``--min-count`` reaches the loss;
- the export needs no file of the work dir;
- bad options fail at once.
"""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

from disalign_mm.second_stage import Settings, select_second_stage
from disalign_mm.second_stage.methods import Schedule
from tests.test_cls.fixtures import REPO
from tests.test_tools.folder_data import (CLASSES, make_folder_dataset, mim_test, stage1_config,
                                          write_images)

pytestmark = pytest.mark.slow  # Runner, mim and subprocess runs


def _settings(**kw) -> Settings:
    base = dict(methods=['disalign', 'logitadj'], schedule=Schedule(epochs=1), quick=True,
                val_per_class=2, many_thr=15, few_thr=6, export='none', check_images=0)
    base.update(kw)
    return Settings(**dict(base, export=None if base['export'] == 'none' else base['export']))


def _config(tmp_path, root, name='stage1.py', **kw) -> str:
    path = tmp_path / name
    path.write_text(stage1_config(root, 'top-level', **kw))
    return str(path)


def _copy(root, tmp_path) -> str:
    dst = str(tmp_path / 'data')
    shutil.copytree(root, dst)
    return dst


def test_cache_notices_added_and_removed_images(shapes, tmp_path):
    root, ckpt = shapes
    data = _copy(root, tmp_path)
    cfg = _config(tmp_path, data)
    work = str(tmp_path / 'select')
    first = select_second_stage(cfg, ckpt, work, _settings(), log=lambda m: None)
    assert first['meta']['train_counts'] == [40, 16, 8, 4]
    # 40 more images of the rarest class
    write_images(osp.join(data, 'train', 'square'), 3, 40, seed=5, start=100)
    lines = []
    second = select_second_stage(cfg, ckpt, work, _settings(), log=lines.append)
    assert second['meta']['train_counts'] == [40, 16, 8, 44]
    assert any("40 images added to class 'square' (4 -> 44)" in line for line in lines), lines
    # test images removed
    for f in sorted(os.listdir(osp.join(data, 'test', 'ring')))[:4]:
        os.remove(osp.join(data, 'test', 'ring', f))
    lines.clear()
    third = select_second_stage(cfg, ckpt, work, _settings(), log=lines.append)
    assert third['meta']['test_images'] == 20
    assert any("4 images removed from class 'ring' (6 -> 2)" in line for line in lines), lines
    # an image changed on disk (same name): noticed too
    img = osp.join(data, 'train', 'circle', '000.png')
    shutil.copy(osp.join(data, 'train', 'cross', '000.png'), img)
    lines.clear()
    select_second_stage(cfg, ckpt, work, _settings(), log=lines.append)
    assert any('1 images changed on disk or relabelled' in line for line in lines), lines
    # one cache folder left: the old ones go once the new one is complete
    caches = [d for d in os.listdir(osp.join(work, 'stage1_outputs')) if d != 'runner']
    assert len(caches) == 1


def test_config_validation_set_is_the_default(shapes, tmp_path):
    root, ckpt = shapes
    data = make_folder_dataset(str(tmp_path / 'data'), val=5)
    val = (f"dict(type='CustomDataset', data_root={data!r}, data_prefix='val', "
           'pipeline=test_pipeline)')
    result = select_second_stage(_config(tmp_path, data, val=val), ckpt, str(tmp_path / 's'),
                                 _settings(), log=lambda m: None)
    assert result['meta']['val_description'] == "the config's validation set"
    assert result['meta']['val_seen_by_stage1'] is False
    assert result['stage1']['val_score'] is not None
    table = open(osp.join(tmp_path, 's', 'results.md')).read()
    assert '(seen in training)' not in table


def test_held_out_split_is_labelled_with_stage1_score(shapes, tmp_path):
    """The config's val set is its test set: the held-out split is used and
    the table says stage 1 has seen it, with stage 1's (optimistic) score."""
    root, ckpt = shapes
    lines = []
    result = select_second_stage(_config(tmp_path, root), ckpt, str(tmp_path / 's'), _settings(),
                                 log=lines.append)
    assert result['meta']['val_seen_by_stage1'] is True
    assert any("val_dataloader reads its test set" in line for line in lines)
    assert any('stage 1 was trained on these images' in line for line in lines)
    table = open(osp.join(tmp_path, 's', 'results.md')).read()
    s1 = next(line for line in table.splitlines() if line.startswith('| Stage 1 |'))
    assert f'{result["stage1"]["val_score"]:.2f} (seen in training)' in s1
    assert "held out of stage 1's training set" in table


def test_validation_is_test_found_on_the_images(shapes, tmp_path):
    """The same folder spelled another way is the same images."""
    root, ckpt = shapes
    val = (f"dict(type='CustomDataset', data_root={root + '//'!r}, data_prefix='./test/', "
           'pipeline=test_pipeline)')
    cfg = _config(tmp_path, root, val=val)
    lines = []
    result = select_second_stage(cfg, ckpt, str(tmp_path / 'auto'), _settings(),
                                 log=lines.append)
    assert any('24 of the 24 validation images are test images' in line for line in lines)
    assert result['meta']['val_seen_by_stage1'] is True
    with pytest.raises(ValueError, match='24 of the 24 validation images are test images'):
        select_second_stage(cfg, ckpt, str(tmp_path / 'config'), _settings(val_set='config'),
                            log=lambda m: None)


def test_refused_checkpoint_keeps_the_cache(shapes, tmp_path):
    root, ckpt = shapes
    cfg = _config(tmp_path, root)
    work = str(tmp_path / 'select')
    select_second_stage(cfg, ckpt, work, _settings(), log=lambda m: None)
    state = torch.load(ckpt, weights_only=False)
    state['state_dict']['head.fc.weight'] = torch.zeros(5, 8)
    wrong = str(tmp_path / 'wrong.pth')
    torch.save(state, wrong)
    with pytest.raises(ValueError, match='does not fit the model'):
        select_second_stage(cfg, wrong, work, _settings(), log=lambda m: None)
    lines = []
    select_second_stage(cfg, ckpt, work, _settings(), log=lines.append)
    assert any(line.startswith('reusing the stage-1 outputs') for line in lines), lines


def test_class_without_training_images(shapes, tmp_path):
    """The GRW and logit-adjustment methods cannot take a zero count: they
    are reported with the reason, tau-normalisation still runs, the table is
    written; --min-count reaches the loss and DisAlign runs."""
    root, ckpt = shapes
    data = _copy(root, tmp_path)
    shutil.rmtree(osp.join(data, 'train', 'square'))
    os.makedirs(osp.join(data, 'train', 'square'))
    cfg = _config(tmp_path, data)
    # CustomDataset finds no image in the empty folder: give the classes
    text = open(cfg).read().replace("data_prefix='train', pipeline=train_pipeline",
                                    f"data_prefix='train', pipeline=train_pipeline, "
                                    f'classes={list(CLASSES)!r}')
    open(cfg, 'w').write(text)
    work = str(tmp_path / 'select')
    lines = []
    result = select_second_stage(cfg, ckpt, work,
                                 _settings(methods=['disalign', 'taunorm', 'logitadj']),
                                 log=lines.append)
    assert result['meta']['train_counts'] == [40, 16, 8, 0]
    assert set(result['failed']) == {'disalign', 'logitadj'}
    assert 'taunorm' in result['methods']
    table = open(osp.join(work, 'results.md')).read()
    assert '| disalign | failed: ' in table
    assert any('--min-count 1 floors them' in line for line in lines)
    floored = select_second_stage(cfg, ckpt, work, _settings(methods=['disalign'], min_count=1,
                                                             export='disalign'),
                                  log=lambda m: None)
    assert 'disalign' in floored['methods'] and not floored['failed']
    from mmengine.config import Config
    assert Config.fromfile(floored['exported']['config']).model.head.loss.min_count == 1


def test_export_is_self_contained(shapes, tmp_path):
    """Moved elsewhere with the work dir removed, the exported config and
    checkpoint still test to the table's accuracy."""
    root, ckpt = shapes
    work = str(tmp_path / 'select')
    result = select_second_stage(_config(tmp_path, root), ckpt, work,
                                 _settings(methods=['disalign'], export='disalign'),
                                 log=lambda m: None)
    exported = result['exported']
    moved = tmp_path / 'moved'
    moved.mkdir()
    for f in (exported['config'], exported['checkpoint']):
        shutil.move(f, moved / osp.basename(f))
    shutil.rmtree(work)
    got = mim_test(str(moved / 'stage2_disalign.py'), str(moved / 'stage2_disalign.pth'),
                   str(tmp_path / 'mim'), subprocess_run=True)
    assert got['accuracy/top1'] == pytest.approx(result['methods']['disalign']['test']['top1'],
                                                 abs=0.01)


def test_bad_options_fail_at_once(shapes, tmp_path):
    root, ckpt = shapes
    cfg = _config(tmp_path, root)
    tool = osp.join(REPO, 'tools', 'select_second_stage.py')
    for args, msg in ((['--train-batch-size', '0'], 'must be a positive integer'),
                      (['--export', 'nosuch'], "export='nosuch' is not one of the methods")):
        proc = subprocess.run([sys.executable, tool, cfg, ckpt, '--work-dir',
                               str(tmp_path / 'w')] + args, capture_output=True, text=True,
                              timeout=120, cwd=REPO)
        assert proc.returncode != 0 and msg in proc.stderr, proc.stderr[-2000:]
        assert not osp.exists(tmp_path / 'w' / 'stage1_outputs')


def test_quick_spreads_over_the_grid():
    from disalign_mm.second_stage.select import quick_values
    assert quick_values([0.01, 0.03, 0.1, 0.3, 1.0]) == [0.03, 0.3]
    assert quick_values([round(0.1 * i, 1) for i in range(21)]) == [0.5, 1.5]
    assert quick_values([1.0]) == [1.0]
