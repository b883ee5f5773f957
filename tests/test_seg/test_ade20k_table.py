"""The ADE20K table of the paper (appendix Table 16) as built in."""
import pytest
from mmseg.datasets import ADE20KDataset

from disalign_mm.engine.class_stats import ratio_groups
from disalign_mm.seg import (ADE20K_TABLE16, ade20k_class_counts, ade20k_class_names, ade20k_groups,
                             ade20k_pixel_ratios, is_ade20k_classes)


def test_label_order_is_mmseg_ade20k():
    mmseg_classes = ADE20KDataset.METAINFO['classes']
    assert len(ADE20K_TABLE16) == 150
    assert [c.strip() for c in mmseg_classes] == ade20k_class_names()
    assert is_ade20k_classes(mmseg_classes)
    assert not is_ade20k_classes(mmseg_classes[::-1])
    assert not is_ade20k_classes(mmseg_classes[:149])


@pytest.mark.parametrize('idx,name,ratio,group', [
    (0, 'wall', 0.1576, 'head'), (19, 'chair', 0.0103, 'head'), (20, 'car', 0.0098, 'body'),
    (29, 'field', 0.004, 'body'), (74, 'computer', 0.0011, 'body'),
    (75, 'swivel chair', 0.001, 'tail'), (89, 'television receiver', 0.0007, 'tail'),
    (149, 'flag', 0.0002, 'tail')])
def test_rows(idx, name, ratio, group):
    assert ade20k_class_names()[idx] == name
    assert ade20k_pixel_ratios()[idx] == ratio
    assert idx in ade20k_groups()[group]


def test_groups_and_totals():
    groups = ade20k_groups()
    assert [len(groups[g]) for g in ('head', 'body', 'tail')] == [20, 55, 75]
    assert groups['head'] == list(range(20)) and groups['body'] == list(range(20, 75))
    assert sum(ade20k_pixel_ratios()) == pytest.approx(0.9271, abs=1e-9)
    # the ratios are shares of all training pixels (the unlabeled 7.3 %
    # included); thresholds on them reproduce the printed groups but for
    # 'swivel chair', printed as 0.001 (rounded) and grouped Tail
    r = ade20k_pixel_ratios()
    assert [i for i, x in enumerate(r) if x > 0.01] == groups['head']
    assert [i for i, x in enumerate(r) if x < 0.001] == groups['tail'][1:]
    assert groups['tail'][0] == 75
    # shares of the *labelled* pixels (what ratio_groups computes from
    # counts) would move 'car' (0.0098 / 0.9271 > 1 %) to head
    assert ratio_groups(r)['head'] == groups['head'] + [20]
    cc = ade20k_class_counts()
    assert cc.unit == 'pixels' and cc.num_classes == 150 and 'Table 16' in cc.source
