"""The model's number of classes against a data set's classes, checked
before a loop runs (:class:`~disalign_mm.engine.ClassCountsHook`), so that a
wrong ``num_classes`` or a class missing from a data set is named at once
instead of after an epoch, as a mismatch of the class counts.

Which modules predict the data set's classes follows mmdet's
``NumClassCheckHook``: every module with an integer ``num_classes`` but the
RPN heads (class-agnostic proposals), the GRW losses (their
``num_classes`` is the length of their counts) and the model itself (mmseg's
segmentor copies its decode head's), and mmpretrain's data preprocessor
unless it makes one-hot labels (its ``num_classes`` serves batch
augmentations only); of nested ones, the outermost (a head, not the
classifier layer inside it).
"""
from typing import Callable, List, Optional, Sequence, Tuple

from torch import nn

from .losses import GRWCrossEntropyLoss
from .utils import unwrap_dataset, unwrap_model


def class_modules(model: nn.Module) -> List[Tuple[str, int]]:
    """``(name, num_classes)`` of the modules of ``model`` that predict the
    data set's classes (see the module docstring)."""
    out: List[Tuple[str, int]] = []
    for name, mod in unwrap_model(model).named_modules():
        n = getattr(mod, 'num_classes', None)
        if not isinstance(n, int) or isinstance(n, bool) or isinstance(mod, GRWCrossEntropyLoss):
            continue
        if not name or name.endswith('rpn_head') or any(name.startswith(o + '.')
                                                        for o, _ in out):
            continue
        if name == 'data_preprocessor' and not getattr(mod, 'to_onehot', False):
            continue
        out.append((name, n))
    return out


def dataset_classes(dataset) -> Optional[list]:
    """``metainfo['classes']`` of a data set (or of the one under its
    wrappers); None when it has none."""
    for d in (dataset, unwrap_dataset(dataset)):
        classes = (getattr(d, 'metainfo', None) or {}).get('classes')
        if classes is not None:
            return [str(c) for c in classes]
    return None


def _describe(dataset) -> str:
    d = unwrap_dataset(dataset)
    ann = getattr(d, 'ann_file', '')
    return type(d).__name__ + (f', {ann}' if isinstance(ann, str) and ann else '')


def check_num_classes(model: nn.Module,
                      dataset,
                      which: str,
                      folder_of: Optional[Callable] = None,
                      trained_classes: Optional[Sequence[str]] = None) -> None:
    """Raise a one-line error unless every module of ``model`` that predicts
    classes (:func:`class_modules`) has as many as the data set's
    ``metainfo['classes']`` (a data set without classes is not checked).

    Args:
        model (nn.Module): The model.
        dataset: The data set of the loop.
        which (str): ``'training'``, ``'val'`` or ``'test'``.
        folder_of (callable, optional): ``folder_of(dataset)`` -> the folder
            whose sub-folders are the data set's classes, or None (the host's
            label counter tells, see
            :func:`~disalign_mm.engine.class_counts.register_label_counter`).
        trained_classes (Sequence[str], optional): The classes the model was
            trained on (a checkpoint's ``dataset_meta``), to name the missing
            ones.

    Raises:
        ValueError: Naming ``num_classes``, the data set, the number of
            classes it has and the fix.
    """
    classes = dataset_classes(dataset)
    if classes is None:
        return
    wrong = [(name, n) for name, n in class_modules(model) if n != len(classes)]
    if not wrong:
        return
    model_n = wrong[0][1]
    keys = ', '.join(f'model.{name}.num_classes={n}' for name, n in wrong)
    folder = folder_of(unwrap_dataset(dataset)) if folder_of is not None else None
    origin = f'folders under {folder}' if folder else _describe(dataset)
    if which == 'training':
        raise ValueError(
            f'ClassCountsHook: the training data set ({origin}) has {len(classes)} classes but '
            f'the model has {keys}: set num_classes={len(classes)} in the config (every head '
            f'of the model), or give the data set the classes the model predicts '
            f'(metainfo=dict(classes=[...])).')
    missing = ''
    if trained_classes is not None:
        gone = [c for c in trained_classes if c not in classes]
        if gone:
            missing = f' (of the training classes, {gone[:10]} are not among them)'
    if folder and len(classes) < model_n:
        fix = (f'a class folder is missing{missing}, and the folders after it would get the '
               'labels of other classes: create the missing folder (it may stay empty), or '
               f'list the {which} images with their training labels in an ann_file')
    else:
        fix = (f'give the {which} data set the classes of the training set{missing} '
               f'({which}_dataloader.dataset.metainfo=dict(classes=[...]), in the training '
               'label order), or fix num_classes if the model is what is wrong')
    raise ValueError(f'ClassCountsHook: the {which} data set has {len(classes)} classes '
                     f'({origin}), the model has num_classes={model_n} ({keys}): {fix}.')


__all__ = ['class_modules', 'dataset_classes', 'check_num_classes']
