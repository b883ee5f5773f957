"""Make ``disalign_mm`` an OpenMMLab codebase for mmengine and mim.

* ``_base_ = 'disalign_mm::<path under configs>'``: mmengine resolves
  ``pkg::path`` bases only for the packages of its fixed table
  ``mmengine.config.utils.MODULE2PACKAGE``, and finds the package through
  ``pkg_resources`` (which, for an editable install, points at
  site-packages, not at the source tree holding ``.mim/``). Base configs are
  resolved before any ``custom_imports`` run, so the fix must be in place at
  interpreter start.
* ``mim search disalign_mm`` and ``mim run disalign_mm <tool>``: mim finds a
  package's ``.mim/model-index.yml`` and ``.mim/tools/`` under
  ``mim.utils.get_installed_path``, which for an editable install points at
  a ``site-packages/disalign_mm`` that does not exist; and ``mim run PKG -h``
  accepts only the packages of its own list
  (``mim.click.get_official_package``).

``disalign_mm-mim.pth`` in site-packages calls :func:`install`. A wheel
installs that file; an editable install (PEP 660 editable wheels carry no
such file) gets it from ``python -m disalign_mm.mim_scope``, which
``make install`` runs. :func:`install` only adds a post-import patch to
``sys.meta_path``: nothing is imported at start-up. When mmengine's config
modules load, the patch adds ``disalign_mm`` to the table, answers
``get_installed_path('disalign_mm')`` with this package's directory, and
leaves the dicts of ``disalign_mm::`` bases without a ``_scope_`` (they are
host configs: their ``default_scope`` says which registry builds them). When
mim's modules load, it answers mim's ``get_installed_path('disalign_mm')``
the same way and adds ``disalign_mm`` to mim's list of codebases. Other
packages are passed through unchanged, but for one thing: mmengine and mim
name the OpenMMLab codebases by their upstream distribution names, which the
maintained fork does not have (its ``mmseg`` is ``onedl-mmsegmentation``).
With onedl-mmengine 0.10.12, ``_base_ = 'mmseg::...'`` stops with
``ModuleNotFoundError: mmsegmentation is not installed``; with onedl-mim
0.5.1, ``mim train mmdet`` with ``ValueError: Can't determine a unique
package given abbreviation mmdet``. The patch points mmengine's table at the
distribution that provides each import name here, and lets mim resolve an
import name it cannot to that distribution (:func:`_provider`); on an
upstream environment both are unchanged.
"""
import importlib.abc
import importlib.machinery
import os.path as osp
import sys
import sysconfig

PACKAGE = 'disalign_mm'
_UTILS, _CONFIG = 'mmengine.config.utils', 'mmengine.config.config'
_MIM_UTILS, _MIM_CLICK = 'mim.utils.utils', 'mim.click.autocompletion'
_PATCHED = (_UTILS, _CONFIG, _MIM_UTILS, _MIM_CLICK)


def package_root() -> str:
    """The directory of the ``disalign_mm`` package (holds ``.mim/``)."""
    return osp.dirname(osp.abspath(__file__))


def _patch_installed_path(module) -> bool:
    """``module.get_installed_path('disalign_mm')`` -> :func:`package_root`;
    False when it was patched already."""
    original = module.get_installed_path
    if getattr(original, '_disalign_mm', False):
        return False

    def get_installed_path(package: str) -> str:
        return package_root() if package == PACKAGE else original(package)

    get_installed_path._disalign_mm = True
    get_installed_path.__doc__ = original.__doc__
    module.get_installed_path = get_installed_path
    return True


def _patch_official_packages(module) -> None:
    """``mim.click.get_official_package()`` also lists ``disalign_mm``."""
    original = module.get_official_package
    if getattr(original, '_disalign_mm', False):
        return

    def get_official_package(*args, **kwargs):
        return list(original(*args, **kwargs)) + [PACKAGE]

    get_official_package._disalign_mm = True
    module.get_official_package = get_official_package


def _provider(import_name: str):
    """The one distribution that provides ``import_name`` here (``mmseg`` ->
    ``mmsegmentation`` or ``onedl-mmsegmentation``), or None."""
    from . import SUPPORTED, find_providers
    if import_name not in SUPPORTED:
        return None
    dists = find_providers()[import_name]
    return dists[0][0] if len(dists) == 1 else None


def _patch_module_full_name(module) -> None:
    """mim's ``module_full_name(abbr)`` resolves an import name it finds no
    unique codebase for (onedl-mim: ``mmdet`` is a part of both
    ``onedl-mmdetection`` and ``mmdet3d``) to the distribution providing it."""
    original = module.module_full_name
    if getattr(original, '_disalign_mm', False):
        return

    def module_full_name(abbr: str) -> str:
        full = original(abbr)
        if not full:
            dist = _provider(abbr)
            if dist in getattr(module, 'PKG2PROJECT', {}):
                return dist
        return full

    module_full_name._disalign_mm = True
    module_full_name.__doc__ = original.__doc__
    module.module_full_name = module_full_name


def _patch(module) -> None:
    if module.__name__ == _UTILS:
        module.MODULE2PACKAGE.setdefault(PACKAGE, PACKAGE)
        for import_name in list(module.MODULE2PACKAGE):
            dist = _provider(import_name)
            if dist is not None:  # the fork's distribution where it is installed
                module.MODULE2PACKAGE[import_name] = dist
        return
    if module.__name__ == _MIM_UTILS:
        _patch_installed_path(module)
        _patch_module_full_name(module)
        return
    if module.__name__ == _MIM_CLICK:
        _patch_official_packages(module)
        return
    if not _patch_installed_path(module):
        return

    # A `pkg::` base puts `_scope_=pkg` on its dicts. Our configs are host
    # configs (their default_scope is mmpretrain, mmseg or mmdet), and there
    # is no `disalign_mm` registry: keep their dicts unscoped.
    get_cfg_path = module.Config._get_cfg_path

    def _get_cfg_path(cfg_path: str, filename: str):
        path, scope = get_cfg_path(cfg_path, filename)
        return path, (None if scope == PACKAGE else scope)

    module.Config._get_cfg_path = staticmethod(_get_cfg_path)


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
        if name not in _PATCHED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader)
        return spec


def install() -> None:
    """Idempotent; patches at once what mmengine or mim has already
    imported."""
    for name in _PATCHED:
        if name in sys.modules:
            _patch(sys.modules[name])
    if not any(isinstance(f, _PostImportPatcher) for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportPatcher())


PTH_NAME = 'disalign_mm-mim.pth'
PTH_LINE = ("import importlib.util as u; u.find_spec('disalign_mm') and "
            "__import__('disalign_mm.mim_scope').mim_scope.install()\n")


def write_pth(site_dir: str = None) -> str:
    """Write the start-up file into ``site_dir`` (default: this interpreter's
    site-packages) and return its path."""
    path = osp.join(site_dir or sysconfig.get_paths()['purelib'], PTH_NAME)
    with open(path, 'w') as f:
        f.write(PTH_LINE)
    return path


if __name__ == '__main__':
    print(f'wrote {write_pth()}: `disalign_mm::` config bases, `mim search '
          'disalign_mm` and `mim run disalign_mm <tool>` now work')
