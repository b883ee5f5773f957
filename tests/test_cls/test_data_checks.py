"""ClassCountsHook against the data, in mmpretrain: the class_counts.json
cache of a work dir is used only while the training set is the one it
counted, and the model's num_classes is checked against the data sets'
classes before anything runs (a missing class folder named as such)."""
import json
import os
import uuid
from types import SimpleNamespace

import pytest
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, METRICS, MODELS
from torch import nn

import disalign_mm.cls  # noqa: F401
from disalign_mm.engine import ClassCountsHook

PER_CLASS = {'ant': 6, 'bee': 3, 'cat': 1}


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmpretrain')


def image_folders(root, per_class):
    """``root/<class>/<i>.jpg`` (empty files: counting reads no image)."""
    for name, n in per_class.items():
        os.makedirs(root / name, exist_ok=True)
        for i in range(n):
            (root / name / f'{i}.jpg').write_bytes(b'')
    return str(root)


def folder_set(root, **kw):
    return dict(type='CustomDataset', data_prefix=str(root), pipeline=[], **kw)


def fake_runner(tmp_path, model, train=None, test=None, metric=None, cfg=None):
    """What the hook reads of a Runner: a training run (``train`` a data set)
    or a test-only run (``cfg`` holds the training set's config)."""
    log = tmp_path / f'{uuid.uuid4().hex}.log'
    return SimpleNamespace(
        model=model, work_dir=str(tmp_path / 'work'), rank=0, cfg=cfg or {},
        logger=MMLogger.get_instance(f'cls-checks-{uuid.uuid4().hex}', log_file=str(log)),
        train_dataloader=None if train is None else SimpleNamespace(dataset=train),
        test_dataloader=None if test is None else SimpleNamespace(dataset=test),
        val_loop=None, train_loop=None,
        val_evaluator=SimpleNamespace(metrics=[]),
        test_evaluator=SimpleNamespace(metrics=[metric] if metric else []),
        log=lambda: log.read_text())


def head(num_classes=3):
    return nn.ModuleDict(dict(head=MODELS.build(dict(
        type='LinearClsHead', num_classes=num_classes, in_channels=4,
        loss=dict(type='GRWCrossEntropyLoss', rho=1.0)))))


def metric():
    return METRICS.build(dict(type='LongTailAccuracy', many_thr=5, few_thr=2, out_file=None))


def counted(tmp_path):
    """A training run that counted ``tmp_path/train`` (PER_CLASS) and cached
    the counts in ``tmp_path/work``; the folder."""
    train = tmp_path / 'train'
    image_folders(train, PER_CLASS)
    (tmp_path / 'work').mkdir()
    ClassCountsHook().before_train(
        fake_runner(tmp_path, head(), train=DATASETS.build(folder_set(train))))
    return train


def test_the_cache_is_used_while_the_training_set_is_the_same(tmp_path):
    train = counted(tmp_path)
    cache = tmp_path / 'work' / 'class_counts.json'
    written = json.loads(cache.read_text())
    assert written['counts'] == [6, 3, 1]
    assert written['training_set']['datasets'][0]['samples'] == 10
    cfg = dict(train_dataloader=dict(dataset=folder_set(train)))
    # the same data: the cache is read
    m = metric()
    r = fake_runner(tmp_path, head(), metric=m, cfg=cfg)
    ClassCountsHook().before_test(r)
    assert m.class_counts.counts == [6, 3, 1] and m.class_counts.source.startswith('cache ')
    # 4 images added to the rarest class: counted again, and the log says why
    image_folders(train, {'cat': 5})
    m = metric()
    r = fake_runner(tmp_path, head(), metric=m, cfg=cfg)
    ClassCountsHook().before_test(r)
    assert m.class_counts.counts == [6, 3, 5]
    assert not m.class_counts.source.startswith('cache ')
    assert (f'the training set changed since {cache} was written (10 samples then, 14 now): '
            'recounted') in r.log()
    # the same number of images, but one moved to another class
    os.rename(train / 'cat' / '4.jpg', train / 'bee' / '4.jpg')
    m = metric()
    ClassCountsHook().before_test(fake_runner(tmp_path, head(), metric=m, cfg=cfg))
    assert m.class_counts.counts == [6, 4, 4]


def test_an_annotation_file_changed_since_the_cache_is_recounted(tmp_path):
    ann = tmp_path / 'train.txt'
    ann.write_text('a.jpg 0\nb.jpg 0\nc.jpg 1\n')
    data = dict(type='CustomDataset', ann_file=str(ann), data_prefix=str(tmp_path),
                metainfo=dict(classes=('x', 'y')), pipeline=[])
    (tmp_path / 'work').mkdir()
    ClassCountsHook().before_train(fake_runner(tmp_path, head(2), train=DATASETS.build(data)))
    ann.write_text('a.jpg 0\nb.jpg 1\nc.jpg 1\nd.jpg 1\n')
    m = metric()
    r = fake_runner(tmp_path, head(2), metric=m, cfg=dict(train_dataloader=dict(dataset=data)))
    ClassCountsHook().before_test(r)
    assert m.class_counts.counts == [1, 3]
    assert f'({ann} was modified): recounted' in r.log()


def test_a_cache_is_used_as_it_is_where_the_training_set_cannot_be_read(tmp_path):
    counted(tmp_path)
    cfg = dict(train_dataloader=dict(dataset=folder_set(tmp_path / 'elsewhere')))
    m = metric()
    r = fake_runner(tmp_path, head(), metric=m, cfg=cfg)
    ClassCountsHook().before_test(r)
    assert m.class_counts.counts == [6, 3, 1]
    assert 'without checking it against the training set, which cannot be read here' in r.log()


def test_num_classes_against_the_training_set_before_anything_runs(tmp_path):
    train = DATASETS.build(folder_set(image_folders(tmp_path / 'train', PER_CLASS)))
    with pytest.raises(ValueError) as exc:
        ClassCountsHook().before_train(fake_runner(tmp_path, head(5), train=train))
    msg = str(exc.value)
    assert (f'the training data set (folders under {tmp_path / "train"}) has 3 classes but the '
            'model has model.head.num_classes=5: set num_classes=3') in msg
    assert '\n' not in msg
    assert not (tmp_path / 'work' / 'class_counts.json').exists()  # nothing was counted


def test_a_missing_test_class_folder_is_named_as_such(tmp_path):
    test = DATASETS.build(folder_set(image_folders(tmp_path / 'test', {'ant': 2, 'cat': 2})))
    hook = ClassCountsHook()
    # the checkpoint's training classes name the missing one
    hook.after_load_checkpoint(None, dict(meta=dict(dataset_meta=dict(classes=list(PER_CLASS)))))
    with pytest.raises(ValueError) as exc:
        hook.before_test(fake_runner(tmp_path, head(3), test=test, metric=metric(),
                                     cfg=dict(train_dataloader=None)))
    msg = str(exc.value)
    assert (f'the test data set has 2 classes (folders under {tmp_path / "test"}), the model has '
            'num_classes=3 (model.head.num_classes=3): a class folder is missing (of the '
            "training classes, ['bee'] are not among them)") in msg
    assert 'create the missing folder (it may stay empty)' in msg
    assert 'evaluated model' not in msg
    # with the folder there (empty), the test set fits the model
    os.makedirs(tmp_path / 'test' / 'bee')
    test = DATASETS.build(folder_set(tmp_path / 'test'))
    r = fake_runner(tmp_path, head(3), test=test, metric=metric(),
                    cfg=dict(train_dataloader=dict(dataset=folder_set(
                        image_folders(tmp_path / 'train', PER_CLASS)))))
    hook.before_test(r)


@pytest.mark.slow  # a Runner
def test_a_wrong_num_classes_stops_the_runner_before_the_first_iteration(tmp_path):
    from mmengine.runner import Runner

    from tests.test_cls.fixtures import FMNIST_STAGE1, load_cfg, make_fmnist, tiny_fmnist_options
    root = make_fmnist(str(tmp_path / 'data'))
    opts = dict(tiny_fmnist_options(root, str(tmp_path / 'work')), **{
        'model.head.num_classes': 12, 'model.data_preprocessor.num_classes': 12})
    runner = Runner.from_cfg(load_cfg(FMNIST_STAGE1, opts))
    with pytest.raises(ValueError, match=r'the training data set \(FashionMNISTLT\) has 10 '
                       r'classes but the model has model.head.num_classes=12: set '
                       r'num_classes=10'):
        runner.train()
    assert runner.iter == 0
    assert not [f for f in os.listdir(tmp_path / 'work') if f.endswith('.pth')]
