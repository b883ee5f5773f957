"""Which mmdet heads the second stages support, and the error for the others.

DisAlign (its calibration and GRW), NorCal and cRT as shipped assume a
**softmax classifier with a background class**: the RoI bbox heads of
two-stage detectors (``BBoxHead`` and its subclasses: Faster / Mask R-CNN,
every stage of Cascade R-CNN), whose ``fc_cls`` predicts ``num_classes + 1``
logits, background last, scored with a softmax. Detectors whose classifier
is a per-class sigmoid (RetinaNet, FCOS, ATSS, RTMDet, DINO and the other
dense and DETR heads; a bbox head with ``use_sigmoid=True`` or a loss with
its own activation, e.g. Seesaw) have no background logit to keep, and their
scores are not a distribution over the classes: the formulas do not apply.

:func:`unsupported_reason` says why a head is not supported (None when it
is); a check registered for :class:`~disalign_mm.engine.ClassCountsHook`
stops a stage-2 run whose consumer of class counts (a GRW loss, a NorCal
classifier) sits in such a head, naming the head and what is supported;
:func:`softmax_bbox_heads` gives the supported heads of a detector (the
second-stage tool's check).
"""
from typing import List, Optional, Tuple

from mmdet.models.roi_heads.bbox_heads import BBoxHead
from torch import nn

from ..engine.class_counts import CountConsumer, register_consumer_check
from ..engine.class_stats import ClassCounts
from ..engine.registry import MODEL_CHECKS
from ..engine.utils import unwrap_model

#: what the message says is supported
SUPPORTED = ('softmax RoI bbox heads with a background class (mmdet BBoxHead and its '
             'subclasses: Faster / Mask R-CNN, every stage of Cascade R-CNN)')
#: what the message says is not
SIGMOID_EXAMPLES = 'RetinaNet, FCOS, ATSS, RTMDet, DINO'


def _is_dense_or_detr_head(module: nn.Module) -> bool:
    mod = type(module).__module__
    return mod.startswith('mmdet.models.dense_heads') or 'detr' in type(module).__name__.lower()


def unsupported_reason(head: nn.Module) -> Optional[str]:
    """Why the second stages cannot work on ``head`` (None: a softmax RoI bbox
    head with a background class)."""
    name = type(head).__name__
    if isinstance(head, BBoxHead):
        loss = getattr(head, 'loss_cls', None)
        if getattr(loss, 'use_sigmoid', False):
            return f'{name} classifies with per-class sigmoids (loss_cls use_sigmoid=True)'
        if getattr(head, 'custom_cls_channels', False):
            return (f'{name} scores with the activation of its loss {type(loss).__name__} '
                    '(custom_cls_channels), not a softmax with a background class')
        return None
    if _is_dense_or_detr_head(head):
        return (f'{name} is a dense/DETR head that classifies with per-class sigmoids '
                '(no background logit)')
    return f'{name} is not an mmdet RoI bbox head (BBoxHead)'


def unsupported_message(head: nn.Module, where: str) -> str:
    """The one-line error for an unsupported ``head`` at ``where``."""
    return (f'{where}: {unsupported_reason(head)}. DisAlign, NorCal and cRT (disalign_mm) '
            f'support {SUPPORTED}; per-class sigmoid detectors ({SIGMOID_EXAMPLES}, ...) are '
            'not supported: the calibration, the background handling and the renormalisation '
            'assume a softmax over the classes and the background.')


def softmax_bbox_heads(model: nn.Module) -> List[Tuple[str, BBoxHead]]:
    """``(name, head)`` of the detector's RoI bbox heads (one for Mask
    R-CNN, one per stage for Cascade R-CNN), every one supported.

    Raises:
        NotImplementedError: The detector has no RoI bbox head (a dense or
            DETR detector), or one of them is not supported (naming it).
    """
    model = unwrap_model(model)
    heads = [(n, m) for n, m in model.named_modules() if isinstance(m, BBoxHead)]
    if not heads:
        dense = [(n, m) for n, m in model.named_modules()
                 if n and n.count('.') == 0 and _is_dense_or_detr_head(m)]
        head = dense[0][1] if dense else model
        where = dense[0][0] if dense else type(model).__name__
        raise NotImplementedError(unsupported_message(head, f'model.{where}'))
    for n, h in heads:
        if unsupported_reason(h):
            raise NotImplementedError(unsupported_message(h, f'model.{n}'))
    return heads


def _enclosing_head(consumer: CountConsumer) -> Optional[nn.Module]:
    owner = consumer.owner
    if owner is None:
        return None
    if isinstance(owner, BBoxHead) or _is_dense_or_detr_head(owner):
        return owner
    return None


@register_consumer_check
def check_softmax_head(consumer: CountConsumer, counts: ClassCounts) -> Optional[str]:
    """A consumer of class counts in an mmdet head (a GRW loss, a NorCal
    classifier) must sit in a supported head (see the module docstring)."""
    head = _enclosing_head(consumer)
    if head is not None and unsupported_reason(head):
        raise NotImplementedError(unsupported_message(
            head, f'{consumer.name} (in model.{consumer.owner_name})'))
    return None


@MODEL_CHECKS.register_module(name='mmdet softmax detector')
def check_softmax_detector(model: nn.Module) -> None:
    """A stage 2 (``DisAlignFreezeHook``) on an mmdet detector needs its RoI
    bbox heads to be softmax heads with a background class: a DisAlign or
    cRT config moved onto RetinaNet, FCOS, ... stops here, naming the head,
    before the freezing would fail on a classifier name it cannot find."""
    from mmdet.models.detectors import BaseDetector
    if isinstance(unwrap_model(model), BaseDetector):
        softmax_bbox_heads(model)
