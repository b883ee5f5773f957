"""The class-count path through mmengine registries, and the one interface
every consumer of class counts implements (loss, heads, metrics of the three
hosts)."""
import pytest
from mmengine.registry import Registry, init_default_scope

import disalign_mm.cls  # noqa: F401  (registers the hosts' sources and counters)
import disalign_mm.det  # noqa: F401
import disalign_mm.seg  # noqa: F401
from disalign_mm.cls import LogitAdjustedClsHead, LongTailAccuracy, count_image_labels
from disalign_mm.det import LongTailCocoMetric, LongTailLVISMetric, count_annotations
from disalign_mm.det.class_counts import check_bbox_head_loss
from disalign_mm.engine import (COUNT_CHECKS, COUNT_SOURCES, LABEL_COUNTERS, ClassCounts,
                                ClassCountsHook, CountConsumerMixin, GRWCrossEntropyLoss,
                                LongTailMetricMixin, count_sources)
from disalign_mm.engine.class_counts import count_training_labels
from disalign_mm.seg import HeadBodyTailIoUMetric, SegGRWCrossEntropyLoss, count_mask_pixels
from tests.test_det.fixtures import write_coco_fixture, write_lvis_fixture


@pytest.fixture(autouse=True)
def _scope():
    """LogitAdjustedClsHead builds its loss in mmpretrain's scope; the
    default scope is process-global and other tests' Runners leave theirs."""
    init_default_scope('mmpretrain')


def test_sources_counters_and_checks_are_mmengine_registries():
    for registry in (COUNT_SOURCES, LABEL_COUNTERS, COUNT_CHECKS):
        assert isinstance(registry, Registry) and registry.scope == 'disalign_mm'
    assert COUNT_SOURCES.get('labels') is count_training_labels
    assert {'labels', 'ade20k', 'lvis'} <= set(COUNT_SOURCES.module_dict)
    assert sorted(COUNT_SOURCES.module_dict) == count_sources()
    counters = list(LABEL_COUNTERS.module_dict.values())
    for fn in (count_image_labels, count_mask_pixels, count_annotations):
        assert fn in counters and fn.dataset_types
    assert count_mask_pixels.reads == ('seg_map_path', )  # the masks are what it counts
    assert check_bbox_head_loss in COUNT_CHECKS.module_dict.values()


def test_a_source_is_built_by_its_registry_and_its_options_are_checked():
    source = COUNT_SOURCES.build(dict(type='lvis', count='instance_count'))
    assert (source.name, source.options, source.from_training_set) == \
        ('lvis', dict(count='instance_count'), False)
    assert COUNT_SOURCES.build('labels').from_training_set
    # a wrong option fails when the hook is built, naming the source's options
    with pytest.raises(TypeError, match=r"source 'lvis': .*counts.*its options are "
                       r"\['count', 'ann_file'\]"):
        ClassCountsHook(source=dict(type='lvis', counts='image_count'))
    with pytest.raises(KeyError, match=r"unknown source 'json'"):
        ClassCountsHook(source='json')  # a module name is not a source


def _metric_consumers(tmp_path):
    coco = write_coco_fixture(str(tmp_path / 'coco'))
    lvis = write_lvis_fixture(str(tmp_path / 'lvis'))
    return [LongTailAccuracy(), HeadBodyTailIoUMetric(),
            LongTailCocoMetric(ann_file=coco['val_ann'], metric='bbox'),
            LongTailLVISMetric(ann_file=lvis['ann_file'], metric='bbox')]


def test_every_consumer_takes_counts_the_same_way(tmp_path):
    consumers = [GRWCrossEntropyLoss(), SegGRWCrossEntropyLoss(),
                 LogitAdjustedClsHead(num_classes=3, in_channels=4)] + \
        _metric_consumers(tmp_path)
    units = ['images', 'pixels', 'images', 'images', 'pixels', 'images', 'images']
    for consumer, unit in zip(consumers, units):
        assert isinstance(consumer, CountConsumerMixin), type(consumer)
        assert consumer.given_class_counts() is None and consumer.class_counts_source is None
        # plain numbers: in the consumer's unit
        consumer.set_class_counts([5, 3, 2], source='numbers')
        given = consumer.given_class_counts()
        assert (given.counts, given.unit, given.source) == ([5, 3, 2], unit, 'numbers')
        # a record: as it is
        consumer.set_class_counts(ClassCounts([7, 2, 1], unit='images', source='record'))
        given = consumer.given_class_counts()
        assert (given.counts, given.source) == ([7, 2, 1], 'record')
        assert consumer.class_counts_source == 'record'
    # the long-tail metrics share the per-class JSON part
    for metric in _metric_consumers(tmp_path):
        assert isinstance(metric, LongTailMetricMixin)


@pytest.mark.parametrize('make', [
    lambda **kw: GRWCrossEntropyLoss(**kw), lambda **kw: SegGRWCrossEntropyLoss(**kw),
    lambda **kw: LogitAdjustedClsHead(num_classes=3, in_channels=4, **kw),
    lambda **kw: LongTailAccuracy(**kw), lambda **kw: HeadBodyTailIoUMetric(**kw)
], ids=['GRWCrossEntropyLoss', 'SegGRWCrossEntropyLoss', 'LogitAdjustedClsHead',
        'LongTailAccuracy', 'HeadBodyTailIoUMetric'])
def test_the_constructor_takes_counts_or_a_file_not_both(make, tmp_path):
    path = str(tmp_path / 'counts.json')
    ClassCounts([4, 2, 1], unit='pixels', source='counted by hand').dump(path)
    consumer = make(class_counts_file=path)
    assert consumer.given_class_counts().counts == [4, 2, 1]
    assert consumer.class_counts_source == 'counted by hand'
    assert consumer.class_counts_file == path
    assert make(class_counts=[4, 2, 1]).given_class_counts().counts == [4, 2, 1]
    with pytest.raises(ValueError, match=r'\w+: give class_counts or class_counts_file, not both'):
        make(class_counts=[4, 2, 1], class_counts_file=path)
