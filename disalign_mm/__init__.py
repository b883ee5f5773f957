"""DisAlign (CVPR 2021) as an OpenMMLab 2.x plugin.

``disalign_mm.core`` holds the math in plain torch; ``disalign_mm.engine``
the codebase-agnostic mmengine pieces; ``disalign_mm.cls``, ``.seg`` and
``.det`` the host adapters for mmpretrain, mmsegmentation and mmdet (import
the one you use, e.g. ``custom_imports=dict(imports=['disalign_mm.cls'])``).

The plugin runs inside the OpenMMLab environment a user already has, so it
checks that environment instead of pinning it: :func:`check_environment`
compares the installed versions with :data:`SUPPORTED` (read from the
``*.dist-info`` folder names, without importing torch or any mm* package)
and raises an :class:`ImportError` that names the package, the version
found and the supported range. It runs when ``disalign_mm`` is imported
and again (a cached no-op by then) when :mod:`disalign_mm.engine`, which
every host adapter loads, is imported.
"""
import os
import re
import sys

from .version import __version__  # noqa: F401  (one version string, read by setup.py too)

# distribution: (oldest supported, first unsupported or None). The same
# ranges are the wheel's requirements (requirements/runtime.txt and
# mminstall.txt; tests/test_packaging checks that they agree). Oldest =
# the oldest stack CI tests (tools/setup_env.sh oldest); the caps of the
# OpenMMLab packages are their next minor release, which has broken plugins
# before (mmcv 2.2.0: refused by mmdet 3.3.0 and mmseg 1.2.2). torch and
# numpy have no cap: newer releases are expected to work (CI tests torch
# 2.14.1 and numpy 2), and a cap could make pip replace a torch that mmcv's
# compiled ops were built for.
SUPPORTED = {
    'torch': ('2.1', None),
    'numpy': ('1.26', None),
    'mmengine': ('0.10.7', '1.0.0'),
    'mmcv': ('2.1.0', '2.2.0'),
    'mmpretrain': ('1.2.0', '1.3.0'),
    'mmsegmentation': ('1.2.2', '1.3.0'),
    'mmdet': ('3.3.0', '3.4.0'),
}
# needed by every part of the plugin; the others are checked when installed
# (a user may have only the host they use)
REQUIRED = ('torch', 'numpy', 'mmengine')

_checked = False


def version_tuple(version: str) -> tuple:
    """``'2.14.1+cu130'`` -> ``(2, 14, 1, 0)``; pre-releases (``2.2.0rc1``)
    sort just below their release: ``(2, 2, 0, -1)``."""
    m = re.match(r'(\d+(?:\.\d+)*)(.*)', version.strip())
    if m is None:
        raise ValueError(f'not a version: {version!r}')
    release = [int(p) for p in m.group(1).split('.')] + [0, 0]
    pre = re.match(r'[.-]?(a|b|c|rc|alpha|beta|pre|preview|dev)', m.group(2).lower())
    return tuple(release[:3]) + (-1 if pre else 0, )


def spec_string(name: str) -> str:
    """``'mmcv>=2.1.0,<2.2.0'``: the range of :data:`SUPPORTED` as a pip
    requirement."""
    low, high = SUPPORTED[name]
    return f'{name}>={low}' + (f',<{high}' if high else '')


def _dist_versions() -> dict:
    """{normalised distribution name: version} from the ``*.dist-info`` and
    ``*.egg-info`` folders on ``sys.path`` (first one wins, as for imports).
    A directory listing per ``sys.path`` entry: about a millisecond, where
    ``importlib.metadata`` costs tens of milliseconds to import."""
    found = {}
    pattern = re.compile(r'^([A-Za-z0-9_.]+?)-([0-9][^-]*?)(-py[0-9.]+)?\.(dist|egg)-info$')
    for entry in sys.path:
        try:
            names = os.listdir(entry or '.')
        except OSError:
            continue
        for fname in names:
            m = pattern.match(fname)
            if m:
                found.setdefault(re.sub(r'[-_.]+', '_', m.group(1)).lower(), m.group(2))
    return found


# import names that differ from the distribution name
_MODULE_OF = {'mmsegmentation': 'mmseg'}


def installed_version(name: str, found: dict = None):
    """Version string of the installed distribution ``name``, or None."""
    found = _dist_versions() if found is None else found
    version = found.get(re.sub(r'[-_.]+', '_', name).lower())
    if version is None:
        import importlib.util
        if importlib.util.find_spec(_MODULE_OF.get(name, name)) is None:
            return None  # not installed
        try:  # importable without a versioned dist-info folder (a development install)
            from importlib import metadata
            version = metadata.version(name)
        except Exception:  # noqa: BLE001  (PackageNotFoundError and broken metadata)
            return None
    return version


def environment_problems(versions=None) -> list:
    """One sentence per package outside :data:`SUPPORTED` (empty when the
    environment is supported). ``versions`` (name: version or None) replaces
    the lookup, for tests."""
    if versions is None:
        found = _dist_versions()
        versions = {name: installed_version(name, found) for name in SUPPORTED}
    problems = []
    for name, (low, high) in SUPPORTED.items():
        version = versions.get(name)
        if version is None:
            if name in REQUIRED:
                problems.append(f'{name} is not installed (supported: {spec_string(name)})')
            continue
        v = version_tuple(version)
        if v < version_tuple(low) or (high is not None and v >= version_tuple(high)):
            problems.append(f'{name} {version} is installed, outside the supported range '
                            f'{spec_string(name)}')
    return problems


def check_environment(force: bool = False) -> None:
    """Raise ImportError naming every package outside :data:`SUPPORTED`
    (with ``DISALIGN_MM_SKIP_ENV_CHECK=1``: warn instead, the user's call).

    Cached: after the first check it returns at once (``force=True`` checks
    again).
    """
    global _checked
    if _checked and not force:
        return
    problems = environment_problems()
    _checked = True
    if not problems:
        return
    msg = (f'disalign_mm {__version__} does not support this environment:\n  - ' +
           '\n  - '.join(problems) +
           '\nInstall versions inside the supported ranges (README.md, section '
           '"Environment", lists them, and how to change torch and mmcv together: '
           'mmcv\'s compiled ops are built for one torch).')
    if os.environ.get('DISALIGN_MM_SKIP_ENV_CHECK', '') == '1':
        import warnings
        warnings.warn(msg + ' DISALIGN_MM_SKIP_ENV_CHECK=1 is set: going on regardless.',
                      stacklevel=2)
        return
    _checked = False
    raise ImportError(msg + ' To go on regardless (at your own risk), set '
                      'DISALIGN_MM_SKIP_ENV_CHECK=1.')


def _during_site_startup() -> bool:
    """True while ``site`` runs the ``.pth`` files at interpreter start-up
    (``disalign_mm-mim.pth`` imports :mod:`disalign_mm.mim_scope`, and with
    it this package). Then ``sys.path`` is still incomplete (a venv's base
    site-packages come later), so the check would be wrong, and it would
    run in every Python process of the environment; :mod:`disalign_mm.engine`
    runs it instead."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == 'addpackage' and frame.f_globals.get('__name__') == 'site':
            return True
        frame = frame.f_back
    return False


if not _during_site_startup():
    check_environment()
