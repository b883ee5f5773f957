"""GRW cross entropy with segmentation defaults (mmseg MODELS)."""
from typing import Optional, Sequence, Union

from mmseg.registry import MODELS

from disalign_mm.engine import GRWCrossEntropyLoss
from .ade20k import ADE20K_SOURCE, ade20k_pixel_ratios

#: Built-in pixel statistics, by name (``class_counts='ade20k'``).
BUILTIN_PIXEL_COUNTS = {'ade20k': (ade20k_pixel_ratios, ADE20K_SOURCE)}


@MODELS.register_module()
class SegGRWCrossEntropyLoss(GRWCrossEntropyLoss):
    """GRW cross entropy (paper Eq. 9-11) for decode heads.

    :class:`disalign_mm.engine.GRWCrossEntropyLoss` with the segmentation
    defaults of the paper: pixels labelled ``ignore_index`` (255) contribute
    nothing, the loss is averaged over the valid pixels (``avg_mode='count'``,
    Eq. 9, as the reference code does for segmentation), and the class
    weights come from pixel frequencies. mmseg's decode heads pass their own
    ``ignore_index`` at every call, which wins over the one given here.

    Example::

        loss_decode=dict(type='SegGRWCrossEntropyLoss', rho=0.3,
                         class_counts='ade20k')
        loss_decode=dict(type='SegGRWCrossEntropyLoss', rho=0.3,
                         class_counts_file='data/my_pixel_counts.json')

    Args:
        rho (float): Re-weighting scale. Defaults to 0.3 (the paper's value
            for ADE20K).
        class_counts (str | sequence, optional): Per-class pixel counts or
            ratios, or the name of a built-in table: ``'ade20k'`` (appendix
            Table 16 of the paper). Defaults to None.
        class_counts_file (str, optional): A counts JSON, e.g. written by
            ``tools/seg_pixel_counts.py``. Defaults to None. One of the two
            must be given.
        ignore_index (int): Defaults to 255.
        avg_mode (str): Defaults to ``'count'`` (pixel-count averaging).
        loss_name (str): Defaults to ``'loss_grw'``.
        **kwargs: See :class:`disalign_mm.core.GRWCrossEntropyLoss`
            (``loss_weight``, ``min_count``).
    """

    def __init__(self,
                 rho: float = 0.3,
                 class_counts: Optional[Union[str, Sequence[float]]] = None,
                 class_counts_file: Optional[str] = None,
                 ignore_index: int = 255,
                 avg_mode: str = 'count',
                 loss_name: str = 'loss_grw',
                 **kwargs) -> None:
        builtin = None
        if isinstance(class_counts, str):
            key = class_counts.lower()
            if key not in BUILTIN_PIXEL_COUNTS:
                raise ValueError(
                    f'class_counts={class_counts!r} is not a built-in table; '
                    f'built-in: {sorted(BUILTIN_PIXEL_COUNTS)}. Otherwise give '
                    'class_counts_file (tools/seg_pixel_counts.py writes one).')
            builtin, class_counts = BUILTIN_PIXEL_COUNTS[key], None
        if class_counts is None and class_counts_file is None and builtin is None:
            raise ValueError(
                'SegGRWCrossEntropyLoss needs pixel frequencies: class_counts='
                "'ade20k' (built-in), a list, or class_counts_file (write one "
                'with tools/seg_pixel_counts.py)')
        super().__init__(
            rho=rho, class_counts=class_counts, class_counts_file=class_counts_file,
            ignore_index=ignore_index, avg_mode=avg_mode, loss_name=loss_name,
            **kwargs)
        if builtin is not None:
            ratios, source = builtin
            self.set_class_counts(ratios(), source=source)
