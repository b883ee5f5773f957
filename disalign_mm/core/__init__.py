"""DisAlign math in plain torch: no OpenMMLab imports here."""
from .adjusted import (LogitAdjustedConv2d, NorCalCosineLinear, NorCalLinear, class_log_counts,
                       norcal_adjust)
from .calibration import CONFIDENCE_MODES, DisAlignCalibration
from .cosine import CosineLinear
from .grw import Counts, grw_cross_entropy, grw_weights
from .layers import (CalibratedConv2d, CalibratedCosineLinear, CalibratedLinear, calibrate,
                     replace_module, resolve_module)
from .monitor import CalibrationMonitor
from .posthoc import class_log_prior, logit_adjust, tau_normalize
from .posthoc_layers import LogitAdjustedLinear, TauNormLinear, posthoc_copy
from .stats import (CalibrationMoments, FeatureMoments, collect_feature_moments, collect_moments,
                    input_calibrations, stats_calibrations)

__all__ = [
    'CONFIDENCE_MODES', 'DisAlignCalibration', 'CosineLinear', 'CalibratedLinear',
    'CalibratedCosineLinear', 'CalibratedConv2d', 'calibrate', 'Counts',
    'grw_cross_entropy', 'grw_weights', 'tau_normalize', 'logit_adjust', 'class_log_prior',
    'FeatureMoments', 'CalibrationMoments', 'collect_feature_moments', 'collect_moments',
    'input_calibrations', 'stats_calibrations', 'CalibrationMonitor', 'norcal_adjust',
    'class_log_counts', 'NorCalLinear', 'NorCalCosineLinear', 'LogitAdjustedConv2d',
    'resolve_module',
    'replace_module', 'TauNormLinear', 'LogitAdjustedLinear', 'posthoc_copy'
]
