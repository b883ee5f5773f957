"""What the dense tool knows of a host (detection, segmentation): the common
part of :class:`~disalign_mm.second_stage.dense.detection.DetectionHost` and
:class:`~disalign_mm.second_stage.dense.segmentation.SegmentationHost`."""
from typing import Sequence


class DenseHost:
    """A host of the dense tool: its post-hoc peer, the class counts it
    adjusts with and the strengths to score.

    Subclasses set what the tool and its table say of them: ``name``
    (``'detection'``), ``scope`` (the OpenMMLab package), ``param`` (the
    strength, ``'gamma'``), ``method`` (``'NorCal'``), ``key`` (of the
    exported config), ``plugin`` (the module to import) and ``count_unit``
    (what a class count counts).

    Args:
        num_classes (int): Foreground classes (detection) or classes of the
            decode head (segmentation).
        counts (Sequence[float]): The training count of each class.
        grid (Sequence[float]): The strengths to score.
        dtype (str): Storage of the cached outputs.
    """

    name = scope = param = method = key = plugin = count_unit = ''

    def __init__(self, num_classes: int, counts: Sequence[float], grid: Sequence[float],
                 dtype: str = 'float32') -> None:
        self.num_classes = int(num_classes)
        self.counts = [float(c) for c in counts]
        self.grid = [float(g) for g in grid]
        self.dtype = dtype
