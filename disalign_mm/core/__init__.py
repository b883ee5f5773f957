"""DisAlign math in plain torch: no OpenMMLab imports here."""
from .calibration import CONFIDENCE_MODES, DisAlignCalibration
from .cosine import CosineLinear
from .grw import GRWCrossEntropyLoss, grw_cross_entropy, grw_weights

__all__ = [
    'CONFIDENCE_MODES', 'DisAlignCalibration', 'CosineLinear',
    'GRWCrossEntropyLoss', 'grw_cross_entropy', 'grw_weights'
]
