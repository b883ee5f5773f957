"""The names a DisAlign calibration adds to a model, for the tests of every host."""

PARAMS = ('alpha', 'beta', 'confidence.bias', 'confidence.weight')
# the fixed statistics that standardise the confidence's input and condition
# the magnitude
BUFFERS = ('feature_count', 'feature_mean', 'feature_std', 'logit_count', 'logit_rms')


def calibration_keys(prefix: str, buffers: bool = True) -> list:
    """Sorted ``prefix + name`` of the calibration's parameters (and, with
    ``buffers``, its saved buffers): what its state dict adds."""
    return sorted(prefix + n for n in PARAMS + (BUFFERS if buffers else ()))
