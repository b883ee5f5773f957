"""The pieces of the detection / segmentation tool that need no model: the
class-aware split, the metric it scores with, what a record keeps of an
image's meta, the table."""
import json

import numpy as np
import pytest

from disalign_mm.second_stage.dense.cache import meta_back, plain_meta
from disalign_mm.second_stage.dense.select import (columns, host_kind, long_tail_metric,
                                                   markdown_table)
from disalign_mm.second_stage.dense.splits import class_aware_split


def test_class_aware_split_takes_the_rare_classes_first_and_is_deterministic():
    # class 2 is in images 0 and 5 only; class 0 in every image
    labels = [[0, 2], [0], [0, 1], [0, 1], [0], [0, 2], [0, 1], [0]]
    a = class_aware_split(labels, 3, per_class=1, seed=0)
    b = class_aware_split(labels, 3, per_class=1, seed=0)
    assert a == b
    assert any(i in (0, 5) for i in a.indices)  # the rarest class is in it
    assert a.images_per_class[1] >= 1 and a.images_per_class[2] >= 1
    # the images taken for the rare classes count for class 0: nothing more
    assert len(a.indices) == 2
    c = class_aware_split(labels, 3, per_class=3, seed=1)
    assert c.images_per_class[2] == 2  # all it has
    assert c.indices == sorted(c.indices) and len(set(c.indices)) == len(c.indices)
    counts = np.zeros(3, int)
    for i in c.indices:
        for k in set(labels[i]):
            counts[k] += 1
    assert counts.tolist() == c.images_per_class
    assert 'held out, class-aware (up to 3 per class, seed 1)' in c.describe()
    with pytest.raises(ValueError, match='class 4 is out of range for 3 classes'):
        class_aware_split([[4]], 3, 1)


def test_split_record(tmp_path):
    s = class_aware_split([[0], [1], [1]], 2, 1, seed=0, paths=['a.jpg', 'b.jpg', 'c.jpg'])
    s.dump(str(tmp_path / 'split.json'))
    rec = json.loads((tmp_path / 'split.json').read_text())
    assert rec['format'] == 'disalign_mm/class-aware-split@1' and rec['seen_by_stage1'] is True
    assert rec['paths'] == [['a.jpg', 'b.jpg', 'c.jpg'][i] for i in rec['indices']]


def test_the_tool_scores_with_the_long_tail_metrics():
    ev = long_tail_metric(dict(type='LVISMetric', ann_file='val.json', metric=['bbox', 'segm']),
                          'counts.json')
    assert ev == dict(type='LongTailLVISMetric', ann_file='val.json', metric=['bbox', 'segm'],
                      class_counts_file='counts.json', out_file=None)
    assert long_tail_metric([dict(type='CocoMetric', ann_file='a.json')], 'c.json',
                            ann_file='train.json')['ann_file'] == 'train.json'
    assert long_tail_metric(dict(type='IoUMetric', iou_metrics=['mIoU']),
                            'c.json')['type'] == 'HeadBodyTailIoUMetric'
    with pytest.raises(NotImplementedError, match='VOCMetric'):
        long_tail_metric(dict(type='VOCMetric'), 'c.json')
    with pytest.raises(ValueError, match='has no ann_file'):
        long_tail_metric(dict(type='CocoMetric'), 'c.json')


def test_host_from_the_config_scope():
    from mmengine.config import Config
    assert host_kind(Config(dict(default_scope='mmdet'))) == 'detection'
    assert host_kind(Config(dict(default_scope='mmseg'))) == 'segmentation'
    with pytest.raises(ValueError, match='tools/select_second_stage.py'):
        host_kind(Config(dict(default_scope='mmpretrain')))


def test_meta_kept_as_plain_values_and_back():
    meta = dict(img_id=3, ori_shape=(96, 128), scale_factor=(1.5, 1.5),
                img_padding_size=[0, 4, 0, 2], flip=False, img_path='a.jpg',
                arr=np.array([1, 2]), other=object(), nothing=None)
    plain = plain_meta(meta)
    assert plain == dict(img_id=3, ori_shape=[96, 128], scale_factor=[1.5, 1.5],
                         img_padding_size=[0, 4, 0, 2], flip=False, img_path='a.jpg',
                         arr=[1, 2], nothing=None)
    json.dumps(plain)
    assert meta_back(plain)['ori_shape'] == (96, 128)


def test_table():
    cols = columns('detection', True)
    assert [k for _, k in cols] == ['segm_AP', 'segm_APr', 'segm_APc', 'segm_APf', 'bbox_AP']
    row = dict(segm_AP=0.2, segm_APr=0.1, segm_APc=0.2, segm_APf=0.3, bbox_AP=0.25)
    result = dict(
        meta=dict(method='NorCal', config='c.py', num_classes=5, test_images=4,
                  param='gamma', val_description="the config's validation set",
                  select_metric='segm_AP', columns=cols),
        rows=[dict(name='Stage 1', test=row, val=0.1, chosen=None),
              dict(name='NorCal', test=dict(row, segm_AP=0.3), val=0.2, chosen='gamma=1'),
              dict(name='cRT (`crt.py`)', test=row, val=None, chosen=None)],
        grid_scores=[(0.0, 0.1), (1.0, 0.2)], self_check=dict(message='fine'))
    text = markdown_table(result)
    assert '| NorCal | 0.300 | 0.100 | 0.200 | 0.300 | 0.250 | 0.200 | gamma=1 |' in text
    assert '| cRT (`crt.py`) | 0.200 |' in text and '| - | - |' in text
    assert 'Validation segm_AP per gamma: 0: 0.100, 1: 0.200' in text
    assert 'Self-check: fine.' in text
