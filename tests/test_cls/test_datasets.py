import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmpretrain.registry import DATASETS

import disalign_mm.cls  # noqa: F401
from disalign_mm.cls.datasets import FMNIST_DEFAULT_ROOT, class_counts_of, long_tail_counts
from tests.test_cls.fixtures import CFG_DIR, make_fmnist


def test_long_tail_profile_pinned():
    assert long_tail_counts(6000, 10, 100) == [
        6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60
    ]
    assert long_tail_counts(40, 10, 10) == [40, 30, 23, 18, 14, 11, 8, 6, 5, 4]
    assert long_tail_counts(100, 3, 1) == [100, 100, 100]
    with pytest.raises(ValueError, match='imb_factor'):
        long_tail_counts(10, 3, 0.5)


@pytest.fixture(scope='module')
def fmnist_root(tmp_path_factory):
    return make_fmnist(str(tmp_path_factory.mktemp('fmnist')))


def _build(root, **kw):
    cfg = dict(type='FashionMNISTLT', data_root=root, n_max=40, imb_factor=10.0)
    cfg.update(kw)
    return DATASETS.build(cfg)


def test_fmnist_lt_train_profile_deterministic_and_balanced_test(fmnist_root):
    a = _build(fmnist_root)
    b = _build(fmnist_root)
    assert a.class_counts == [40, 30, 23, 18, 14, 11, 8, 6, 5, 4]
    assert class_counts_of(a, 10).tolist() == a.class_counts
    assert len(a) == sum(a.class_counts)
    imgs_a = np.stack([a.get_data_info(i)['img'] for i in range(len(a))])
    imgs_b = np.stack([b.get_data_info(i)['img'] for i in range(len(b))])
    assert np.array_equal(imgs_a, imgs_b)
    assert imgs_a.shape[1:] == (28, 28) and imgs_a.dtype == np.uint8
    c = _build(fmnist_root, seed=1)
    assert c.class_counts == a.class_counts
    assert not np.array_equal(imgs_a, np.stack([c.get_data_info(i)['img'] for i in range(len(c))]))
    test = _build(fmnist_root, split='test')
    assert test.class_counts == [6] * 10
    assert test.test_mode


def test_fmnist_lt_permuted_classes(fmnist_root):
    p = _build(fmnist_root, permute_classes=True, seed=3)
    ranks = p.class_ranks(10)
    assert sorted(ranks) == list(range(10)) and ranks != list(range(10))
    profile = long_tail_counts(40, 10, 10)
    assert p.class_counts == [profile[r] for r in ranks]
    assert _build(fmnist_root, permute_classes=True, seed=3).class_counts == p.class_counts


def test_fmnist_lt_val_split_is_disjoint_and_balanced(fmnist_root):
    train = _build(fmnist_root, n_max=30, val_per_class=10)
    val = _build(fmnist_root, split='val', n_max=30, val_per_class=10)
    assert val.class_counts == [10] * 10
    key = lambda d, i: d.get_data_info(i)['img'].tobytes()  # noqa: E731
    assert not {key(train, i) for i in range(len(train))} & {key(val, i) for i in range(len(val))}
    with pytest.raises(ValueError, match='n_max <= '):
        _build(fmnist_root, split='val', n_max=40, val_per_class=10)


def test_fmnist_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match='apt-get install -y dataset-fashion-mnist'):
        _build(str(tmp_path))
    with pytest.raises(ValueError, match='lower n_max'):
        DATASETS.build(dict(type='FashionMNISTLT', data_root=make_fmnist(str(tmp_path / 'f')),
                            n_max=41))


@pytest.mark.skipif(not osp.isfile(osp.join(FMNIST_DEFAULT_ROOT, 'train-labels-idx1-ubyte.gz')),
                    reason='Debian dataset-fashion-mnist not installed')
def test_fmnist_lt_real_debian_files():
    train = DATASETS.build(dict(type='FashionMNISTLT', split='train'))
    assert train.class_counts == [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]
    test = DATASETS.build(dict(type='FashionMNISTLT', split='test'))
    assert test.class_counts == [1000] * 10


def test_inaturalist2018_json(tmp_path):
    ann = dict(
        images=[dict(id=i, file_name=f'train_val2018/P/{i}.jpg') for i in range(5)],
        annotations=[dict(id=i, image_id=i, category_id=c)
                     for i, c in enumerate([7, 3, 7, 7, 3])],
        categories=[dict(id=7, name='seven'), dict(id=3, name='three')])
    (tmp_path / 'train2018.json').write_text(json.dumps(ann))
    ds = DATASETS.build(dict(type='INaturalist2018', data_root=str(tmp_path),
                             ann_file='train2018.json'))
    assert ds.metainfo['classes'] == ('three', 'seven')
    assert [ds.get_data_info(i)['gt_label'] for i in range(5)] == [1, 0, 1, 1, 0]
    assert ds.get_data_info(0)['img_path'] == osp.join(str(tmp_path), 'train_val2018/P/0.jpg')
    assert class_counts_of(ds).tolist() == [2, 3]
    del ann['annotations']
    (tmp_path / 'test2018.json').write_text(json.dumps(ann))
    with pytest.raises(ValueError, match='no .*annotations'):
        DATASETS.build(dict(type='INaturalist2018', data_root=str(tmp_path),
                            ann_file='test2018.json'))
    with pytest.raises(FileNotFoundError, match='val2018.json'):
        DATASETS.build(dict(type='INaturalist2018', data_root=str(tmp_path),
                            ann_file='val2018.json'))


@pytest.mark.parametrize('cfg_file,root_key,ann,prefix', [
    ('imagenet_lt/resnet50_8xb32-coslr-90e_imagenet-lt.py', 'imagenet', 'ImageNet_LT_train.txt',
     'train/n01440764/'),
    ('places_lt/resnet152_in1k-pre_8xb32-coslr-30e_places-lt.py', 'places', 'Places_LT_train.txt',
     'data_256/a/airfield/'),
])
def test_list_file_datasets_of_the_configs(tmp_path, cfg_file, root_key, ann, prefix):
    """ImageNet-LT / Places-LT list files through mmpretrain's own classes,
    as the shipped configs build them."""
    lines = [f'{prefix}{i:03d}.jpg {c}' for i, c in enumerate([0, 0, 0, 2, 1])]
    (tmp_path / ann).write_text('\n'.join(lines) + '\n')
    cfg = Config.fromfile(osp.join(CFG_DIR, cfg_file))
    ds_cfg = cfg.train_dataloader.dataset
    assert ds_cfg.ann_file == ann
    ds_cfg.data_root = str(tmp_path)
    ds = DATASETS.build(ds_cfg)
    assert len(ds) == 5
    assert ds.get_data_info(3)['img_path'] == osp.join(str(tmp_path), f'{prefix}003.jpg')
    assert class_counts_of(ds, 3).tolist() == [3, 1, 1]
