"""The classifiers of mmpretrain's heads: where each head keeps the linear
layer(s) that make its logits, and how it combines them.

A second stage changes only the classifier of a stage-1 head. This module
says, for every single-label mmpretrain head with a linear classifier, which
module that is (a dotted path from the head) and, for the heads with two
classifiers, how their outputs make the prediction and the training loss.
:mod:`disalign_mm.cls.heads` uses it to turn any such head into its DisAlign,
tau-normalised or logit-adjusted version, :mod:`disalign_mm.second_stage`
to read the classifiers' inputs and outputs and to train a second stage on
them.

- ``LinearClsHead`` (ResNet, Swin, ConvNeXt, ...) and our ``CosineClsHead``:
  ``fc``;
- ``VisionTransformerClsHead`` (ViT, CLIP, ...; with or without its hidden
  layer): ``layers.head``;
- ``DeiTClsHead``: ``layers.head`` and ``layers.head_dist``, the prediction
  their mean;
- ``VigClsHead``: ``fc2``;
- ``StackedLinearClsHead`` (MobileNetV3): ``layers.-1.fc``, the last block's;
- ``ConformerHead``: ``conv_cls_head`` and ``trans_cls_head``, the prediction
  their sum, trained with one loss per branch;
- ``EfficientFormerClsHead``: ``head`` (and ``dist_head`` with
  ``distillation=True``, the prediction their mean);
- ``LeViTClsHead``: ``head.linear`` (and ``head_dist.linear`` with
  ``distillation=True``, the prediction their mean).

**Heads with two classifiers.** Every classifier is transformed, each with
its own input: DeiT's class and distillation tokens are different features
(and EfficientFormer's and LeViT's two classifiers read the same feature, or
the same one after their own BatchNorm); Conformer's two branches have
different widths. The head's own code then combines the transformed outputs
exactly as it combines the stage-1 ones. Calibrating each classifier keeps
the one rule of every host (the classifier becomes a calibrated layer, the
calibration sits at ``<classifier>.calibration``, its confidence reads the
classifier's own input), starts at the stage-1 prediction (each calibration
is the identity), and contains the paper's single calibration of the
averaged logits as the special case of equal magnitudes and margins. A
second stage of such a head trains on the prediction the head makes at test
time (the mean of the two outputs), except Conformer, whose loss (one cross
entropy per branch) is the head's own. mmpretrain refuses to train the
distilled EfficientFormer and LeViT heads (their stage 1 needs a teacher);
their second stage, which trains no classifier, trains on the test-time
prediction instead (:class:`~disalign_mm.cls.heads.Stage2HeadMixin`).

A head not in the table cannot be transformed: multi-label heads, ArcFace's
margin head and heads without a linear classifier are refused with the list
above. A single-label ``ClsHead`` of your own whose logits are the output of
one linear classifier can name it (``classifier='my_fc'``).
"""
import dataclasses
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple, Type, Union

from torch import nn

from ..core import resolve_module

COMBINE = ('one', 'mean', 'sum')


@dataclass(frozen=True)
class ClassifierSpec:
    """How a head's classifiers make its logits.

    Attributes:
        paths (tuple[str]): The classifiers' module paths from the head (as
            given in the table: ``'layers.-1.fc'``).
        combine (str): ``'one'`` (one classifier: its output is the
            prediction's logits), ``'mean'`` or ``'sum'`` of the outputs.
        loss_per_classifier (bool): Training sums one loss per classifier
            output (Conformer) instead of one loss of the combined output.
        train_on_output (bool): A second stage trains on the head's test-time
            output (the distilled heads, see the module docstring).
        host_trains (bool): mmpretrain trains the stage-1 head itself (False
            for the distilled EfficientFormer and LeViT heads, whose ``loss``
            refuses): a second stage that re-trains the classifiers with the
            stage-1 head (cRT) cannot run on it.
    """
    paths: Tuple[str, ...]
    combine: str = 'one'
    loss_per_classifier: bool = False
    train_on_output: bool = False
    host_trains: bool = True

    def __post_init__(self) -> None:
        if self.combine not in COMBINE:
            raise ValueError(f'combine must be one of {COMBINE}, got {self.combine!r}')
        if (self.combine == 'one') != (len(self.paths) == 1):
            raise ValueError(f'combine={self.combine!r} with {len(self.paths)} classifiers')


def _one(path: str) -> Callable[[nn.Module], ClassifierSpec]:
    return lambda head: ClassifierSpec((path, ))


def _efficientformer(head: nn.Module) -> ClassifierSpec:
    if getattr(head, 'dist', False):
        return ClassifierSpec(('head', 'dist_head'), 'mean', train_on_output=True,
                              host_trains=False)
    return ClassifierSpec(('head', ))


def _levit(head: nn.Module) -> ClassifierSpec:
    # BatchNormLinear (bn, then linear) unless fused for deployment
    def path(name: str) -> str:
        return f'{name}.linear' if hasattr(getattr(head, name), 'linear') else name

    if getattr(head, 'distillation', False):
        return ClassifierSpec((path('head'), path('head_dist')), 'mean', train_on_output=True,
                              host_trains=False)
    return ClassifierSpec((path('head'), ))


#: the supported heads (by class name, subclasses included) -> their classifiers
HEAD_CLASSIFIERS: Dict[str, Callable[[nn.Module], ClassifierSpec]] = {
    'LinearClsHead': _one('fc'),
    'CosineClsHead': _one('fc'),
    'VisionTransformerClsHead': _one('layers.head'),
    'DeiTClsHead': lambda head: ClassifierSpec(('layers.head', 'layers.head_dist'), 'mean',
                                               train_on_output=True),
    'VigClsHead': _one('fc2'),
    'StackedLinearClsHead': _one('layers.-1.fc'),
    'ConformerHead': lambda head: ClassifierSpec(('conv_cls_head', 'trans_cls_head'), 'sum',
                                                 loss_per_classifier=True),
    'EfficientFormerClsHead': _efficientformer,
    'LeViTClsHead': _levit,
}
#: heads that are refused even when a classifier is named, and why
REFUSED = {
    'MultiLabelClsHead': 'a multi-label head (a sigmoid per class, not one label per image)',
    'ArcFaceClsHead': "ArcFace's margin head (cosine logits with an angular margin, "
                      'not a linear classifier)',
    'MultiTaskHead': 'a multi-task head (one head per task: apply it to the task head)',
}


def supported_heads() -> str:
    """The supported heads, for error messages."""
    return ', '.join(HEAD_CLASSIFIERS)


def _family(cls: type, names) -> Optional[str]:
    for c in cls.__mro__:
        if c.__name__ in names:
            return c.__name__
    return None


def head_family(head_cls: Type[nn.Module]) -> Optional[str]:
    """The entry of :data:`HEAD_CLASSIFIERS` of a head class (its own name or
    its nearest base's), None when it has none."""
    return _family(head_cls, HEAD_CLASSIFIERS)


def check_head_class(head_cls: Type[nn.Module], classifier=None) -> None:
    """Raise unless a second stage can transform heads of ``head_cls``:
    one of :data:`HEAD_CLASSIFIERS` (or a subclass), or a single-label
    ``ClsHead`` of one's own with a named ``classifier``.

    Raises:
        NotImplementedError: Naming the head, why, and the supported heads.
    """
    name = head_cls.__name__
    refused = _family(head_cls, REFUSED)
    if refused is not None:
        raise NotImplementedError(
            f'{name} is {REFUSED[refused]}: DisAlign and its peers calibrate the linear '
            f'classifier of a single-label head; supported: {supported_heads()}')
    if head_family(head_cls) is not None:
        return
    from mmpretrain.models.heads import ClsHead
    if not issubclass(head_cls, ClsHead):
        raise NotImplementedError(
            f'{name} is not a single-label classification head (mmpretrain ClsHead); DisAlign '
            f'and its peers calibrate the linear classifier of one of: {supported_heads()}')
    if classifier is None:
        raise NotImplementedError(
            f'{name} is not one of the heads whose classifier is known ({supported_heads()}). '
            'If its logits are the output of one linear layer, name it: classifier='
            "'<module path>' (e.g. 'fc')")


def _paths(classifier) -> Tuple[str, ...]:
    if isinstance(classifier, str):
        return (classifier, )
    if isinstance(classifier, Sequence) and classifier and all(
            isinstance(p, str) for p in classifier):
        return tuple(classifier)
    raise TypeError(f'classifier must be a module path or a list of them, got {classifier!r}')


def _linear_like(head: nn.Module) -> list:
    from ..core import CosineLinear
    return [n for n, m in head.named_modules() if isinstance(m, (nn.Linear, CosineLinear))]


def classifier_spec(head: nn.Module,
                    classifier: Union[None, str, Sequence[str]] = None) -> ClassifierSpec:
    """The classifiers of ``head`` (canonical paths: ``'layers.2.fc'``, not
    ``'layers.-1.fc'``) and how they combine.

    Args:
        head (nn.Module): A built head.
        classifier (str | Sequence[str], optional): The classifier path(s)
            the config names. For a head of the table they must be its
            classifiers (a check: every one of them, in any order); for a
            single-label head of one's own, the one linear classifier.
            Defaults to None: the table's.

    Raises:
        NotImplementedError: The head cannot be transformed (see
            :func:`check_head_class`).
        ValueError: A path that does not exist, is not a classifier of the
            head, or leaves one of its classifiers out (naming it).
    """
    cls = type(head)
    check_head_class(cls, classifier)
    name = cls.__name__
    family = head_family(cls)

    def resolve(path: str, what: str) -> str:
        try:
            return resolve_module(head, path)[2]
        except LookupError as e:
            raise ValueError(f'{name} has no classifier {path!r} ({e}); {what}') from None

    if family is None:
        (path, *more) = _paths(classifier)
        if more:
            raise ValueError(f'{name}: a head of your own is calibrated through one classifier, '
                             f'got classifier={list(_paths(classifier))}')
        linear = ', '.join(_linear_like(head)) or 'none'
        return ClassifierSpec((resolve(path, f'its linear layers: {linear}'), ))
    spec = HEAD_CLASSIFIERS[family](head)
    known = [resolve(p, 'the head does not fit mmpretrain 1.x') for p in spec.paths]
    spec = dataclasses.replace(spec, paths=tuple(known))
    if classifier is None:
        return spec
    listed = ', '.join(known)
    given = []
    for p in _paths(classifier):
        canonical = resolve(p, f'its classifier{"s" if len(known) > 1 else ""}: {listed}')
        if canonical not in known:
            raise ValueError(f'{p!r} is not a classifier of {name}; its classifier'
                             f'{"s are" if len(known) > 1 else " is"} {listed} (or leave '
                             'classifier unset)')
        given.append(canonical)
    missing = [p for p in known if p not in given]
    if missing:
        raise ValueError(
            f'{name} has {len(known)} classifiers, {listed} ({_combined(spec)}); '
            f'classifier={list(_paths(classifier))} leaves {", ".join(missing)} out: every '
            f'classifier is calibrated, each with its own input. Give classifier={known} '
            'or leave classifier unset')
    return spec


def _combined(spec: ClassifierSpec) -> str:
    return {'mean': 'the prediction is their mean', 'sum': 'the prediction is their sum'
            }.get(spec.combine, 'one classifier')


def classifier_modules(head: nn.Module, spec: ClassifierSpec) -> Tuple[nn.Module, ...]:
    """The classifier modules of ``spec`` in ``head``."""
    return tuple(resolve_module(head, p)[3] for p in spec.paths)


def combine_outputs(spec: ClassifierSpec, outputs: Sequence):
    """The prediction's logits from the classifiers' outputs, as the head
    computes them (``(a + b) / 2`` for the mean, ``a + b`` for the sum)."""
    if spec.combine == 'one':
        return outputs[0]
    total = outputs[0]
    for o in outputs[1:]:
        total = total + o
    return total / len(outputs) if spec.combine == 'mean' else total


def classifier_patterns(spec: ClassifierSpec, prefix: str = 'head.') -> Tuple[list, list]:
    """``DisAlignFreezeHook``'s ``trainable`` (the classifiers' own
    parameters) and ``reinit`` (the classifiers) patterns of a second stage
    that re-trains the classifiers (cRT), for a model whose head is
    ``prefix``."""
    import re
    trainable = [rf'^{re.escape(prefix + p)}\.' for p in spec.paths]
    reinit = [re.escape(prefix + p) for p in spec.paths]
    return trainable, reinit
