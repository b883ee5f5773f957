"""A downstream project on its own image folders, exactly as the
classification configs' READMEs say (their lines under the stage-1 and
stage-2 ``_base_``, in a directory outside the repository): stage 1, stage 2
and the test with Many/Medium/Few, for every shipped classification data
set's configs."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import disalign_mm.cls  # noqa: F401
from tests.own_data import readme_config, run, write_config

pytestmark = pytest.mark.slow  # Runner runs of the real configs, shrunk

FOLDERS = ('imagenet_lt', 'places_lt', 'inaturalist2018', 'fashion_mnist_lt')
TRAIN = {'ant': 12, 'bee': 6, 'cat': 3, 'dog': 2, 'elk': 1}  # the README's 5 classes


def image_folders(root):
    """``root/{train,val,test}/<class>/*.png``: a bright square at a
    class-dependent place on noise."""
    rng = np.random.default_rng(0)
    for split, per_class in (('train', TRAIN), ('val', dict.fromkeys(TRAIN, 2)),
                             ('test', dict.fromkeys(TRAIN, 2))):
        for c, (name, n) in enumerate(per_class.items()):
            os.makedirs(root / split / name, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 60, (36, 36, 3)).astype(np.uint8)
                img[2 + 6 * c:8 + 6 * c, 4:12] = 250
                Image.fromarray(img).save(root / split / name / f'{i}.png')


def shrink(folder, stage2):
    """The size of the model and the images, the schedule: not the data."""
    if folder == 'fashion_mnist_lt':
        opts = {'model.backbone.stem_channels': 4, 'model.backbone.base_channels': 4,
                'model.head.in_channels': 16}
    else:
        opts = {'model.backbone.depth': 18, 'model.backbone.stem_channels': 8,
                'model.backbone.base_channels': 8, 'model.backbone.init_cfg': None,
                'model.head.in_channels': 64,
                'train_dataloader.dataset.pipeline.1.scale': 32}
        for split in ('val', 'test'):
            opts.update({f'{split}_dataloader.dataset.pipeline.1.scale': 36,
                         f'{split}_dataloader.dataset.pipeline.2.crop_size': 32})
    for split in ('train', 'val', 'test'):
        opts.update({f'{split}_dataloader.batch_size': 8, f'{split}_dataloader.num_workers': 0,
                     f'{split}_dataloader.persistent_workers': False})
    opts.update({'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1,
                 'default_hooks.checkpoint.interval': 1, 'default_hooks.logger.interval': 1,
                 # thresholds for 12 / 6 / 3 / 2 / 1 training images
                 'val_evaluator.many_thr': 10, 'val_evaluator.few_thr': 3,
                 'test_evaluator.many_thr': 10, 'test_evaluator.few_thr': 3})
    if stage2:
        opts['train_dataloader.batch_size'] = 32  # one iteration
    return opts


@pytest.mark.parametrize('folder', FOLDERS)
def test_own_data_stage1_stage2_and_many_medium_few(folder, tmp_path, monkeypatch):
    project = tmp_path / 'project'  # outside the repository
    image_folders(project / 'data' / 'my_data')
    bases = readme_config(folder, 'bases').splitlines()
    common = readme_config(folder, 'common')
    assert len(bases) == 2 and all(b.startswith("_base_ = 'disalign_mm::") for b in bases)
    stage1 = write_config(project, 'my_stage1.py', bases[0] + '\n' + common)
    stage2 = write_config(project, 'my_stage2.py', bases[1] + '\n' + common)
    monkeypatch.chdir(project)  # the README's data_root is relative to the project

    s1 = run(stage1, shrink(folder, False), project / 'work_dirs' / 'my_stage1')
    counts = json.loads((project / 'work_dirs' / 'my_stage1' / 'class_counts.json').read_text())
    assert counts['counts'] == [12, 6, 3, 2, 1] and counts['classes'] == list(TRAIN)
    ckpt = project / 'work_dirs' / 'my_stage1' / 'epoch_1.pth'
    assert ckpt.is_file()

    s2 = run(stage2, dict(shrink(folder, True), load_from=str(ckpt)),
             project / 'work_dirs' / 'my_stage2')
    head = s2.model.head
    assert type(head).__name__.startswith('DisAlign')
    assert head.loss_module.class_counts.tolist() == [12, 6, 3, 2, 1]
    metrics = s2.test()
    assert {'accuracy/top1', 'accuracy/many', 'accuracy/medium', 'accuracy/few'} <= set(metrics)
    if folder != 'fashion_mnist_lt':
        assert 'accuracy/top5' in metrics
    record = s2.test_evaluator.metrics[0].per_class
    assert record['groups'] == {'many': [0], 'medium': [1, 2], 'few': [3, 4]}
    assert record['train_counts'] == [12, 6, 3, 2, 1] and record['test_counts'] == [2] * 5
    del s1
