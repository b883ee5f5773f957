"""A downstream project on its own COCO-format detection data, exactly as
the LVIS folders' READMEs say (their stage-1 and stage-2 config lines, in a
directory outside the repository): stage 1, stage 2 and the test with
APr / APc / APf over the counts of its own training annotations; and what
the inherited LVIS statistics say when the README's line is missing."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import disalign_mm.det  # noqa: F401
from tests.own_data import readme_config, run, write_config
from tests.test_det.fixtures import H, W, tiny_options

CLASSES = ('ant', 'bee', 'cat')  # the README's
# per image: (category, x, y, w, h); training images per category 5 / 2 / 1
TRAIN = [[('ant', 8, 8, 40, 30)], [('ant', 60, 40, 50, 40), ('bee', 8, 8, 30, 30)],
         [('ant', 20, 20, 40, 40)], [('ant', 70, 10, 40, 40), ('cat', 10, 50, 30, 30)],
         [('ant', 30, 40, 50, 40), ('bee', 90, 50, 30, 36)]]
VAL = [[('ant', 8, 8, 40, 30), ('bee', 60, 50, 30, 30)], [('cat', 20, 20, 40, 40)]]
COLORS = {'ant': (220, 40, 40), 'bee': (240, 220, 40), 'cat': (60, 40, 160)}


def write_coco(root, split, images):
    """``root/<split>/*.jpg`` and ``root/annotations/<split>.json``."""
    os.makedirs(os.path.join(root, split), exist_ok=True)
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
    rng = np.random.RandomState(0)
    imgs, anns = [], []
    for i, objs in enumerate(images):
        arr = (rng.rand(H, W, 3) * 60).astype(np.uint8)
        for name, x, y, w, h in objs:
            arr[y:y + h, x:x + w] = COLORS[name]
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=CLASSES.index(name) + 1,
                             bbox=[x, y, w, h], area=w * h, iscrowd=0,
                             segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
        Image.fromarray(arr).save(os.path.join(root, split, f'{i + 1:06d}.jpg'), quality=95)
        imgs.append(dict(id=i + 1, file_name=f'{i + 1:06d}.jpg', width=W, height=H))
    cats = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    with open(os.path.join(root, 'annotations', f'{split}.json'), 'w') as f:
        json.dump(dict(images=imgs, annotations=anns, categories=cats), f)


def shrink(stage2):
    """The model, the image size and the schedule of the tiny LVIS tests: not
    the data, the classes or the counts (the README's)."""
    keep = {k: v for k, v in tiny_options(dict(root='', ann_file=''), 'v1',
                                          repeat_factor=not stage2).items()
            if not any(s in k for s in ('data_root', 'ann_file', 'data_prefix', 'metainfo',
                                        'num_classes'))}
    keep.update({'default_hooks.checkpoint.interval': 2,
                 # thresholds for 5 / 2 / 1 training images: frequent, common, rare
                 'val_evaluator.rare_thr': 1, 'val_evaluator.frequent_thr': 3,
                 'test_evaluator.rare_thr': 1, 'test_evaluator.frequent_thr': 3})
    if stage2:
        keep.update({'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
                     'param_scheduler.0.start_factor': 1.0})
    else:
        keep.update({'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 100})
    return keep


def write_project(project):
    root = str(project / 'data' / 'my_coco')
    write_coco(root, 'train', TRAIN)
    write_coco(root, 'val', VAL)
    return project


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    """The project and its LVIS v1 stage 1 (the README's lines, trained):
    ``(project, checkpoint)``. The v0.5 stage 1 is the same model."""
    project = write_project(tmp_path_factory.mktemp('own_det') / 'project')
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)  # the README's data_root is relative to the project
        config = write_config(project, 'my_stage1.py', readme_config('lvis_v1', 'stage1'))
        run(config, shrink(False), project / 'work_dirs' / 'my_stage1')
    counts = json.loads((project / 'work_dirs' / 'my_stage1' / 'class_counts.json').read_text())
    assert counts['counts'] == [5, 2, 1] and counts['unit'] == 'images'
    return project, project / 'work_dirs' / 'my_stage1' / 'epoch_1.pth'


@pytest.mark.slow  # Runner runs of mmdet's Mask R-CNN, shrunk (~1 min on 2 cores)
@pytest.mark.parametrize('folder', ['lvis_v1', 'lvis_v05'])
def test_own_coco_data_stage1_stage2_and_rare_common_frequent(folder, stage1, monkeypatch):
    project, ckpt = stage1
    monkeypatch.chdir(project)
    if folder == 'lvis_v05':  # its stage-1 lines build their data set as v1's do
        s1 = run(write_config(project, 'my_stage1_v05.py', readme_config(folder, 'stage1')),
                 shrink(False), project / 'work_dirs' / 'my_stage1_v05', train=False)
        data = s1.train_dataloader.dataset
        assert type(data.dataset).__name__ == 'CocoDataset' and len(data.dataset) == len(TRAIN)
    stage2 = write_config(project, f'my_stage2_{folder}.py', readme_config(folder, 'stage2'))
    s2 = run(stage2, dict(shrink(True), load_from=str(ckpt)),
             project / 'work_dirs' / f'my_stage2_{folder}')
    head = s2.model.roi_head.bbox_head
    assert head.loss_cls.class_counts.tolist() == [5, 2, 1]  # its training annotations'
    assert head.fc_cls.calibration.alpha.numel() == 3
    metrics = s2.test()
    assert 'coco/bbox_mAP' in metrics
    record = s2.test_evaluator.metrics[0].per_class
    assert record['groups'] == {'rare': [2], 'common': [1], 'frequent': [0]}
    assert record['train_counts'] == [5, 2, 1] and record['classes'] == list(CLASSES)


@pytest.fixture
def project(tmp_path, monkeypatch):
    project = write_project(tmp_path / 'project')  # outside the repository
    monkeypatch.chdir(project)
    return project


def test_without_the_readme_line_the_lvis_statistics_error_lists_the_fixes(project):
    """The inherited ClassCountsHook(source=dict(type='lvis')) meets a
    COCO-format file: the error the README quotes, with its fixes."""
    from mmdet.registry import DATASETS, HOOKS
    from mmengine.config import Config

    from disalign_mm.engine.class_counts import CountRequest
    text = readme_config('lvis_v1', 'stage2').replace(
        "custom_hooks = [dict(type='DisAlignFreezeHook'), dict(type='ClassCountsHook')]", '')
    cfg = Config.fromfile(write_config(project, 'no_counts.py', text))
    hook = HOOKS.build(cfg.custom_hooks[1])
    request = CountRequest(None, True)
    request._leaves = [DATASETS.build(dict(cfg.train_dataloader.dataset, lazy_init=True))]
    with pytest.raises(ValueError, match=r"3 of 3 categories have no 'image_count'.*count the "
                       r"training annotations instead \(ClassCountsHook's default source"):
        hook._source(request)
