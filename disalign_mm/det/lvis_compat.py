"""Make the ``lvis`` 0.5.3 release evaluate on numpy >= 1.24.

``lvis/eval.py`` (``LVISEval.accumulate``) calls ``astype(dtype=np.float)``;
numpy 1.24 removed the ``np.float`` alias, so mmdet's ``LVISMetric`` crashes
at evaluation time with ``AttributeError: module 'numpy' has no attribute
'float'``.

The fix is scoped to that one module: ``lvis.eval``'s global ``np`` becomes a
view of numpy that adds back the removed builtin aliases (``np.float is
float`` etc., exactly what they were before numpy 1.20 deprecated them) and
delegates every other name to numpy. numpy itself is not touched, so no
other code starts to accept the removed aliases; an ``lvis`` that no longer
uses them is left alone. It is applied when :mod:`disalign_mm.det` is
imported, only where numpy lacks the aliases (numpy >= 1.24; numpy 1.20 to
1.23 still has them, deprecated), and is idempotent.
"""
import types
import warnings

import numpy as np

# the aliases numpy 1.24 removed; each was the Python builtin of the same name
_REMOVED_ALIASES = {'float': float, 'int': int, 'bool': bool, 'object': object,
                    'complex': complex, 'str': str}


class _NumpyWithAliases(types.ModuleType):
    """numpy, plus the builtin aliases it no longer has."""

    def __init__(self) -> None:
        super().__init__('numpy', np.__doc__)
        for name in missing_aliases():
            setattr(self, name, _REMOVED_ALIASES[name])

    def __getattr__(self, name: str):
        return getattr(np, name)

    def __repr__(self) -> str:
        return f'<numpy with the aliases removed in 1.24 ({np.__version__}), for lvis>'


def missing_aliases() -> list:
    """The builtin aliases this numpy no longer has (numpy 2 has ``np.bool``
    again, as ``np.bool_``: left as numpy has it)."""
    with warnings.catch_warnings():  # numpy 1.20-1.23 warns on the aliases
        warnings.simplefilter('ignore')
        return [a for a in _REMOVED_ALIASES if not hasattr(np, a)]


def _needs_patch(module) -> bool:
    return getattr(module, 'np', None) is np and bool(missing_aliases())


def apply_lvis_numpy_compat() -> bool:
    """Patch ``lvis.eval`` if it is installed and needs it.

    Returns:
        bool: True when ``lvis.eval`` now sees the aliases (patched now or
        before), False when lvis is not installed or does not need it.
    """
    try:
        import lvis.eval as lvis_eval
    except ImportError:
        return False
    if isinstance(getattr(lvis_eval, 'np', None), _NumpyWithAliases):
        return True
    if not _needs_patch(lvis_eval):
        return False
    lvis_eval.np = _NumpyWithAliases()
    return True
