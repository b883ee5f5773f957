"""Codebase-agnostic pieces, registered once in mmengine's root registries
(every host scope falls back to them): the GRW loss, the stage-2 freezing
and monitoring hooks, the class-counts hook with its registries and the one
interface of a class-count consumer, safe checkpoint loading and class
statistics."""
from . import checkpoint
from .class_counts import (ClassCountsHook, CountConsumer, CountRequest, count_sources,
                           leaf_datasets, register_consumer_check, register_count_source,
                           register_label_counter)
from .class_stats import (FEW_THR, HEAD_THR, MANY_THR, TAIL_THR, ClassCounts, ClassCountsLike,
                          as_class_counts, count_groups, explicit_groups, load_class_counts,
                          ratio_groups)
from .consumer import CountConsumerMixin, LongTailMetricMixin
from .freeze import (FrozenStage2, calibration_param_names, calibration_state_names,
                     check_stage1_fit, freeze_stage2, reinit_module_names, reinitialize,
                     select_trainable)
from .hooks import DisAlignFreezeHook
from .losses import GRWCrossEntropyLoss
from .monitor_hook import DisAlignMonitorHook
from .registry import COUNT_CHECKS, COUNT_SOURCES, LABEL_COUNTERS

checkpoint.install()

__all__ = [
    'ClassCounts', 'ClassCountsLike', 'as_class_counts', 'count_groups', 'explicit_groups',
    'load_class_counts', 'ratio_groups', 'MANY_THR', 'FEW_THR', 'HEAD_THR', 'TAIL_THR',
    'ClassCountsHook', 'CountConsumer', 'CountRequest', 'count_sources', 'leaf_datasets',
    'register_consumer_check', 'register_count_source', 'register_label_counter',
    'COUNT_SOURCES', 'LABEL_COUNTERS', 'COUNT_CHECKS', 'CountConsumerMixin',
    'LongTailMetricMixin', 'DisAlignFreezeHook', 'DisAlignMonitorHook',
    'calibration_param_names', 'GRWCrossEntropyLoss', 'FrozenStage2', 'calibration_state_names',
    'check_stage1_fit', 'freeze_stage2', 'select_trainable', 'reinit_module_names', 'reinitialize'
]
