"""GRW cross entropy with segmentation defaults (mmseg MODELS)."""
from typing import Optional, Sequence

from mmseg.registry import MODELS

from ..engine.losses import GRWCrossEntropyLoss


@MODELS.register_module()
class SegGRWCrossEntropyLoss(GRWCrossEntropyLoss):
    """GRW cross entropy (paper Eq. 9-11) for decode heads.

    :class:`disalign_mm.engine.GRWCrossEntropyLoss` with the segmentation
    defaults of the paper: pixels labelled ``ignore_index`` (255) contribute
    nothing, the loss is averaged over the valid pixels (``avg_mode='count'``,
    Eq. 9; the official segmentation code divides by all pixels, ignored ones
    included), and the class
    weights come from pixel frequencies. mmseg's decode heads pass their own
    ``ignore_index`` at every call, which wins over the one given here.

    The pixel counts come from ``class_counts`` / ``class_counts_file``, or
    from :class:`~disalign_mm.engine.ClassCountsHook` (the paper's ADE20K
    table with ``source='ade20k'``, the training masks by default).

    Example::

        loss_decode=dict(type='SegGRWCrossEntropyLoss', rho=0.3)
        custom_hooks = [dict(type='ClassCountsHook', source='ade20k')]
        # or
        loss_decode=dict(type='SegGRWCrossEntropyLoss', rho=0.3,
                         class_counts_file='data/my_pixel_counts.json')

    Args:
        rho (float): Re-weighting scale. Defaults to 0.3 (the paper's value
            for ADE20K).
        class_counts (sequence, optional): Per-class pixel counts or ratios.
            Defaults to None.
        class_counts_file (str, optional): A counts JSON, e.g. written by
            ``tools/seg_pixel_counts.py``. Defaults to None.
        ignore_index (int): Defaults to 255.
        avg_mode (str): Defaults to ``'count'`` (pixel-count averaging).
        loss_name (str): Defaults to ``'loss_grw'``.
        **kwargs: See :class:`disalign_mm.engine.GRWCrossEntropyLoss`
            (``loss_weight``, ``min_count``).
    """

    #: plain numbers are pixel counts
    count_unit = 'pixels'

    def __init__(self,
                 rho: float = 0.3,
                 class_counts: Optional[Sequence[float]] = None,
                 class_counts_file: Optional[str] = None,
                 ignore_index: int = 255,
                 avg_mode: str = 'count',
                 loss_name: str = 'loss_grw',
                 **kwargs) -> None:
        if isinstance(class_counts, str):
            raise ValueError(
                f'class_counts={class_counts!r}: give numbers or a class_counts_file. '
                "A built-in table is a source of ClassCountsHook: custom_hooks = "
                f"[dict(type='ClassCountsHook', source={class_counts!r})] (built-in "
                "pixel tables: 'ade20k').")
        super().__init__(
            rho=rho, class_counts=class_counts, class_counts_file=class_counts_file,
            ignore_index=ignore_index, avg_mode=avg_mode, loss_name=loss_name,
            **kwargs)
