"""A downstream project on its own segmentation data, exactly as
configs/ade20k/README.md says (its stage-1 and stage-2 config lines, in a
directory outside the repository); the error that names the inherited
ADE20K counts when the counts are given elsewhere; the counts cache and a
changed mask."""
import json
import os
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmseg.registry import DATASETS, HOOKS, MODELS
from PIL import Image
from torch import nn

import disalign_mm.seg  # noqa: F401
from disalign_mm.engine import ClassCounts, ClassCountsHook
from disalign_mm.seg import HeadBodyTailIoUMetric
from tests.own_data import readme_config, run, write_config
from tests.test_seg.conftest import H, W, shrink_options, write_ade

STAGE2 = 'disalign_mm::ade20k/disalign_fcn_r50-d8_8xb4-8k_ade20k-512x512.py'


def own_masks():
    """Masks with the README's 4 classes (values 1..4; 0 unlabelled): sky
    everywhere, a tree band, a road block, a small car; long-tailed."""
    def mask(tree_rows, car=True):
        m = np.ones((H, W), np.uint8)
        m[:2] = 0
        m[tree_rows] = 2
        m[16:, :20] = 3
        if car:
            m[18:20, 24:26] = 4
        return m
    return {'training': {'t1': mask(slice(4, 10)), 't2': mask(slice(6, 8)),
                         't3': mask(slice(5, 12), car=False)},
            'validation': {'v1': mask(slice(4, 9)), 'v2': mask(slice(3, 6))}}


def model_options(stage2):
    """The README's configs, shrunk: everything but the data and the counts."""
    return {k: v for k, v in shrink_options('unused', stage2=stage2).items()
            if 'data_root' not in k}


@pytest.mark.slow  # three Runner runs of the real mmseg FCN, shrunk (~25 s on 2 cores)
def test_own_data_stage1_stage2_and_head_body_tail(tmp_path, monkeypatch):
    project = tmp_path / 'project'  # outside the repository
    write_ade(project / 'data' / 'my_seg', own_masks())
    stage1 = write_config(project, 'my_stage1.py', readme_config('ade20k', 'stage1'))
    stage2 = write_config(project, 'my_stage2.py', readme_config('ade20k', 'stage2'))
    assert f"_base_ = '{STAGE2}'" in open(stage2).read()
    monkeypatch.chdir(project)  # the README's data_root is relative to the project

    s1 = run(stage1, model_options(False), project / 'work_dirs' / 'my_stage1')
    metric = s1.val_evaluator.metrics[0]
    counts = json.loads((project / 'work_dirs' / 'my_stage1' / 'class_counts.json').read_text())
    assert counts['classes'] == ['sky', 'tree', 'road', 'car'] and counts['unit'] == 'pixels'
    assert metric.per_class['train_counts'] == counts['counts']
    assert metric.per_class['groups'] == {'head': [0, 1, 2], 'body': [3], 'tail': []}

    s2 = run(stage2, dict(model_options(True), load_from=str(
        project / 'work_dirs' / 'my_stage1' / 'iter_2.pth')), project / 'work_dirs' / 'my_stage2')
    head = s2.model.decode_head
    assert head.loss_decode.class_counts.tolist() == counts['counts']  # the training masks'
    assert head.conv_seg.calibration.alpha.numel() == 4
    metrics = s2.test()
    for key in ('mIoU', 'head_mIoU', 'body_mIoU', 'head_mAcc', 'body_mAcc'):
        assert key in metrics
    record = s2.test_evaluator.metrics[0].per_class
    assert record['classes'] == ['sky', 'tree', 'road', 'car']
    assert record['train_counts'] == counts['counts'] and 'disalign' in record


def _runner(tmp_path, cfg, model, train_set=None):
    log = tmp_path / f'{uuid.uuid4().hex}.log'
    return SimpleNamespace(
        model=model, work_dir=str(tmp_path), rank=0, cfg=cfg, val_loop=None,
        logger=MMLogger.get_instance(f'seg-own-{uuid.uuid4().hex}', log_file=str(log)),
        train_dataloader=SimpleNamespace(dataset=train_set), log=lambda: log.read_text())


def test_inherited_ade20k_counts_against_yours_name_the_line_to_write(tmp_path):
    """The issue's downstream project: its own 4-class counts for the loss,
    and the ADE20K counts inherited in custom_hooks."""
    project = tmp_path / 'project'
    project.mkdir()
    ClassCounts([60, 30, 9, 1], unit='pixels', source='my pixels').dump(
        str(project / 'counts.json'))
    path = write_config(project, 'my_stage2.py', f"_base_ = '{STAGE2}'\n"
                        'model = dict(decode_head=dict(num_classes=4, loss_decode=dict('
                        f"class_counts_file='{project / 'counts.json'}')))\n")
    cfg = Config.fromfile(path)
    model = nn.ModuleDict(dict(decode_head=MODELS.build(dict(
        type='FCNHead', in_channels=4, channels=4, num_convs=1, num_classes=4,
        loss_decode=cfg.model.decode_head.loss_decode))))
    hook = HOOKS.build(cfg.custom_hooks[1])
    with pytest.raises(ValueError) as exc:
        hook.before_train(_runner(tmp_path, cfg, model))
    msg = str(exc.value)
    assert '\n' not in msg
    assert "and the source 'ade20k' of ClassCountsHook" in msg and '4 vs 150 classes' in msg
    assert ("This hook is custom_hooks[1]: dict(type='ClassCountsHook', source='ade20k'), set "
            f'in {STAGE2}.') in msg
    assert ('To use your counts instead, write in your config: custom_hooks = '
            "[dict(type='DisAlignFreezeHook'), dict(type='ClassCountsHook', "
            f"class_counts_file='{project / 'counts.json'}')]") in msg
    # that line works: the hook takes the loss's counts
    fixed = Config.fromfile(write_config(
        project, 'fixed.py', open(path).read() + "custom_hooks = [dict(type='DisAlignFreezeHook'),"
        f" dict(type='ClassCountsHook', class_counts_file='{project / 'counts.json'}')]\n"))
    hook = HOOKS.build(fixed.custom_hooks[1])
    hook.before_train(_runner(tmp_path, fixed, model))
    assert hook.counts.counts == [60, 30, 9, 1]


def test_the_cached_pixel_counts_follow_the_masks(tmp_path):
    root = write_ade(tmp_path / 'seg', own_masks())
    data = dict(type='BaseSegDataset', data_root=root, metainfo=dict(classes=('a', 'b', 'c', 'd')),
                img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True, pipeline=[],
                data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'))
    model = nn.ModuleDict(dict(decode_head=MODELS.build(dict(
        type='FCNHead', in_channels=4, channels=4, num_convs=1, num_classes=4,
        loss_decode=dict(type='SegGRWCrossEntropyLoss')))))
    work = tmp_path / 'work'
    work.mkdir()
    ClassCountsHook().before_train(_runner(work, {}, model, DATASETS.build(data)))
    before = json.loads((work / 'class_counts.json').read_text())['counts']
    # the same file names, another content: one mask loses its car
    mask = np.asarray(Image.open(os.path.join(root, 'annotations', 'training', 't1.png'))).copy()
    mask[mask == 4] = 1
    Image.fromarray(mask).save(os.path.join(root, 'annotations', 'training', 't1.png'))
    metric = HeadBodyTailIoUMetric()
    test_run = _runner(work, dict(train_dataloader=dict(dataset=data)), nn.Module())
    test_run.test_evaluator = SimpleNamespace(metrics=[metric])
    ClassCountsHook().before_test(test_run)
    assert metric.class_counts.counts[3] == before[3] - 4
    assert 'the same number of samples, but other files or labels' in test_run.log()
