"""Codebase-agnostic pieces, registered once in mmengine's root registries
(every host scope falls back to them): the GRW loss, the stage-2 freezing
hook, safe checkpoint loading and class statistics."""
from . import checkpoint
from .class_stats import ClassCounts, count_groups, explicit_groups, load_class_counts, ratio_groups
from .freeze import (FrozenStage2, calibration_param_names, calibration_state_names, freeze_stage2,
                     reinit_module_names, reinitialize, select_trainable)
from .hooks import DisAlignFreezeHook
from .losses import GRWCrossEntropyLoss

checkpoint.install()

__all__ = [
    'ClassCounts', 'count_groups', 'explicit_groups', 'load_class_counts', 'ratio_groups',
    'DisAlignFreezeHook', 'calibration_param_names', 'GRWCrossEntropyLoss',
    'FrozenStage2', 'calibration_state_names', 'freeze_stage2', 'select_trainable',
    'reinit_module_names', 'reinitialize'
]
