"""Weights-only loading of mmengine Runner checkpoints on torch >= 2.6.

torch >= 2.6 unpickles with ``weights_only=True`` by default, and mmengine
0.10.7 does not say otherwise, so every Runner checkpoint (``load_from`` of
stage 2, resume) fails with "Weights only load failed": the checkpoint holds
numpy scalars and arrays (``meta``, ``message_hub``) and mmengine's
``HistoryBuffer``.

We keep weights-only loading and allow-list exactly those types. One of them
needs care: ``HistoryBuffer`` pickles its statistics functions
(``HistoryBuffer.mean``, ...) which pickle protocol 2 writes as
``builtins.getattr(HistoryBuffer, 'mean')``. Allowing the real ``getattr``
would let a checkpoint fetch any attribute of any allowed object (and from
there reach code), so ``builtins.getattr`` is mapped to
:func:`_restricted_getattr`, which resolves only functions defined on
``HistoryBuffer`` itself.

:func:`install` replaces mmengine's loader for local files (scheme ``''``)
with :func:`load_from_local`; importing :mod:`disalign_mm.engine` calls it.
"""
import os.path as osp
import pickle
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

# HistoryBuffer registers these on its first instance; a fresh process may
# load a checkpoint before any exists
_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _restricted_getattr(obj: Any, name: str) -> Any:
    """``getattr`` for unpickling: only HistoryBuffer's statistics methods."""
    allowed = set(_DEFAULT_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed \
            and callable(HistoryBuffer.__dict__.get(name)):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({getattr(obj, "__name__", type(obj).__name__)}, '
        f'{name!r}) while loading a checkpoint: only the statistics methods '
        'of mmengine.logging.HistoryBuffer are allowed')


def _numpy_globals() -> List[Any]:
    """numpy values a checkpoint's meta/message_hub hold: scalars and arrays
    (their pickles name numpy.core under numpy 1, numpy._core under 2)."""
    try:
        from numpy._core import multiarray
        mod = 'numpy._core.multiarray'
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
        mod = 'numpy.core.multiarray'
    out: List[Any] = [np.ndarray, np.dtype]
    # a pickled dtype is rebuilt as an instance of its class (Float64DType...)
    out += sorted({type(np.dtype(c)) for c in '?bBhHiIlLqQefdgFDGUS'}, key=str)
    for m in {mod, 'numpy.core.multiarray', 'numpy._core.multiarray'}:
        out += [(multiarray.scalar, f'{m}.scalar'),
                (multiarray._reconstruct, f'{m}._reconstruct')]
    return out


def allowed_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The allow-list used on top of torch's own weights-only set."""
    return _numpy_globals() + [HistoryBuffer, (_restricted_getattr, 'builtins.getattr')]


def safe_load(f, map_location=None) -> Any:
    """``torch.load(f, weights_only=True)`` with :func:`allowed_globals`.

    Raises:
        RuntimeError: The file holds something outside the allow-list; the
            message names it. Nothing in the file is executed.
    """
    with torch.serialization.safe_globals(allowed_globals()):
        try:
            return torch.load(f, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as e:
            raise RuntimeError(
                f'refused to load checkpoint {f!r}: it holds objects outside '
                'the weights-only allow-list of disalign_mm (tensors, numpy '
                'values, mmengine HistoryBuffer). If you trust this file, '
                'load it yourself with torch.load(weights_only=False) and '
                f'save only its state_dict. Details: {e}') from e


def load_from_local(filename: str, map_location=None) -> Any:
    """mmengine's local-file loader, weights-only (see module docstring)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    return safe_load(filename, map_location=map_location)


def install() -> None:
    """Make mmengine load local checkpoints through :func:`load_from_local`
    (``load_from``, ``resume``, ``load_checkpoint``). Idempotent."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
