"""Make ``_base_ = 'disalign_mm::<path under configs>'`` work in mmengine.

mmengine resolves ``pkg::path`` bases only for the packages of its fixed
table ``mmengine.config.utils.MODULE2PACKAGE``, and finds the package through
``pkg_resources`` (which, for an editable install, points at site-packages,
not at the source tree holding ``.mim/``). Base configs are resolved before
any ``custom_imports`` run, so the fix must be in place at interpreter start.

``disalign_mm-mim.pth`` (installed into site-packages with the package) calls
:func:`install`, which only adds a post-import patch to ``sys.meta_path``:
nothing is imported at start-up. When mmengine's config modules load, the
patch adds ``disalign_mm`` to the table and answers
``get_installed_path('disalign_mm')`` with this package's directory.
"""
import importlib.abc
import importlib.machinery
import os.path as osp
import sys

PACKAGE = 'disalign_mm'
_UTILS, _CONFIG = 'mmengine.config.utils', 'mmengine.config.config'


def package_root() -> str:
    """The directory of the ``disalign_mm`` package (holds ``.mim/``)."""
    return osp.dirname(osp.abspath(__file__))


def _patch(module) -> None:
    if module.__name__ == _UTILS:
        module.MODULE2PACKAGE.setdefault(PACKAGE, PACKAGE)
        return
    original = module.get_installed_path
    if getattr(original, '_disalign_mm', False):
        return

    def get_installed_path(package: str) -> str:
        return package_root() if package == PACKAGE else original(package)

    get_installed_path._disalign_mm = True
    module.get_installed_path = get_installed_path


class _PatchingLoader(importlib.abc.Loader):

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        _patch(module)


class _PostImportPatcher(importlib.abc.MetaPathFinder):

    def find_spec(self, name, path=None, target=None):
        if name not in (_UTILS, _CONFIG):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader)
        return spec


def install() -> None:
    """Idempotent; patches at once what mmengine has already imported."""
    for name in (_UTILS, _CONFIG):
        if name in sys.modules:
            _patch(sys.modules[name])
    if not any(isinstance(f, _PostImportPatcher) for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportPatcher())
