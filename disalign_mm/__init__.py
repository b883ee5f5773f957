"""DisAlign (CVPR 2021) as an OpenMMLab 2.x plugin.

``disalign_mm.core`` holds the math in plain torch; ``disalign_mm.engine``
the codebase-agnostic mmengine pieces; ``disalign_mm.cls``, ``.seg`` and
``.det`` the host adapters for mmpretrain, mmsegmentation and mmdet (import
the one you use, e.g. ``custom_imports=dict(imports=['disalign_mm.cls'])``).

The plugin runs inside the OpenMMLab environment a user already has, so it
checks that environment instead of pinning it. The OpenMMLab packages come
in two families with the same import names: upstream (``mmengine``,
``mmcv``, ``mmdet``, ...) and the maintained fork (``onedl-mmengine``,
``onedl-mmcv``, ``onedl-mmdetection``, ...). :func:`check_environment`
finds, for each import name of :data:`SUPPORTED`, the distribution that
provides it (from the ``*.dist-info`` folders on ``sys.path``, without
importing torch, any mm* package or ``importlib.metadata``), compares its
version with that distribution's range and raises an :class:`ImportError`
naming the distribution, the version found and the range; also when two
distributions provide the same import name (their files overwrite each
other), when the families are mixed, and when mmcv was built without its
compiled ops. It runs when ``disalign_mm`` is imported and again (a cached
no-op by then) when :mod:`disalign_mm.engine`, which every host adapter
loads, is imported.
"""
import os
import os.path as osp
import re
import sys

from .version import __version__  # noqa: F401  (one version string, read by setup.py too)

# import name: {distribution: (oldest supported, first unsupported or None)}.
# The same ranges are the wheel's extras (requirements/upstream.txt and
# fork.txt; tests/test_packaging checks that they agree). Oldest = the oldest
# stack CI tests of that family (tools/setup_env.sh oldest / fork); the caps
# of the OpenMMLab packages are their next minor release, which has broken
# plugins before (mmcv 2.2.0: refused by mmdet 3.3.0 and mmseg 1.2.2), and
# 1.0 for mmengine. torch and numpy have no cap: newer releases are expected
# to work (CI tests torch 2.14.1 and numpy 2), and a cap could make pip
# replace a torch that mmcv's compiled ops were built for. mim (a command,
# never imported by the plugin) has no range: it is here so that two
# distributions of it are found.
SUPPORTED = {
    'torch': {'torch': ('2.1', None)},
    'numpy': {'numpy': ('1.26', None)},
    'mmengine': {'mmengine': ('0.10.7', '1.0.0'), 'onedl-mmengine': ('0.10.12', '1.0.0')},
    'mmcv': {'mmcv': ('2.1.0', '2.2.0'), 'onedl-mmcv': ('2.3.6', '2.4.0')},
    'mmpretrain': {'mmpretrain': ('1.2.0', '1.3.0'), 'onedl-mmpretrain': ('1.3.6', '1.4.0')},
    'mmseg': {'mmsegmentation': ('1.2.2', '1.3.0'),
              'onedl-mmsegmentation': ('1.4.2', '1.5.0')},
    'mmdet': {'mmdet': ('3.3.0', '3.4.0'), 'onedl-mmdetection': ('3.5.1', '3.6.0')},
    'mim': {'openmim': None, 'onedl-mim': None},
}
# the family of each OpenMMLab library distribution (they import each other,
# so one environment holds one family; mim, a command, may come from either)
FAMILIES = {
    'upstream': ('mmengine', 'mmcv', 'mmpretrain', 'mmsegmentation', 'mmdet'),
    'fork': ('onedl-mmengine', 'onedl-mmcv', 'onedl-mmpretrain', 'onedl-mmsegmentation',
             'onedl-mmdetection'),
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


def _norm(name: str) -> str:
    """PEP 503 normalised distribution name: ``onedl_MMCV`` -> ``onedl-mmcv``."""
    return re.sub(r'[-_.]+', '-', name).lower()


def spec_string(distribution: str) -> str:
    """``'onedl-mmcv>=2.3.6,<2.4.0'``: the supported range of a distribution
    of :data:`SUPPORTED` as a pip requirement (the bare name when any
    version is supported)."""
    for ranges in SUPPORTED.values():
        if distribution in ranges:
            if ranges[distribution] is None:
                return distribution
            low, high = ranges[distribution]
            return f'{distribution}>={low}' + (f',<{high}' if high else '')
    raise KeyError(f'{distribution} is not a distribution of disalign_mm.SUPPORTED')


def family_of(distribution: str):
    """``'fork'``, ``'upstream'`` or None (torch, numpy, mim, unknown)."""
    for family, names in FAMILIES.items():
        if _norm(distribution) in names:
            return family
    return None


def _provides(dist_info: str, name: str, import_name: str) -> bool:
    """Whether the distribution of this ``*.dist-info`` folder installs the
    top-level package ``import_name``: a distribution of :data:`SUPPORTED`
    for it does by definition; another one says so in its ``top_level.txt``
    or, without one, in its ``RECORD`` (a file list)."""
    if name in SUPPORTED[import_name]:
        return True
    try:
        with open(osp.join(dist_info, 'top_level.txt')) as f:
            return import_name in f.read().split()
    except OSError:
        pass
    try:
        with open(osp.join(dist_info, 'RECORD')) as f:
            record = '\n' + f.read()
    except OSError:
        return False
    return f'\n{import_name}/__init__.py,' in record or f'\n{import_name}.py,' in record


def find_providers(path=None) -> dict:
    """{import name of :data:`SUPPORTED`: [(distribution, version, its
    ``*.dist-info`` folder), ...]}: every installed distribution that
    provides it, in ``sys.path`` order (the first one is what ``import``
    gets; more than one is a broken environment: their files overwrite, or
    hide, each other).

    Read from the ``*.dist-info`` and ``*.egg-info`` folder names: a
    directory listing per ``sys.path`` entry, plus ``top_level.txt`` (or
    ``RECORD``) of a distribution whose name contains an import name but
    that is not one of :data:`SUPPORTED` (``torchvision``, a third mmcv
    build). About a millisecond, where ``importlib.metadata`` costs tens of
    milliseconds to import. A distribution that provides an import name
    under a name without it is not seen; an import name that no
    distribution claims is looked up with ``importlib.metadata`` (a
    development checkout on ``sys.path``)."""
    found = {name: [] for name in SUPPORTED}
    seen = set()
    pattern = re.compile(r'^([A-Za-z0-9_.]+?)-([0-9][^-]*?)(-py[0-9.]+)?\.(dist|egg)-info$')
    for entry in sys.path if path is None else path:
        try:
            names = sorted(os.listdir(entry or '.'))
        except OSError:
            continue
        for fname in names:
            m = pattern.match(fname)
            if m is None:
                continue
            name = _norm(m.group(1))
            if name in seen:  # shadowed by an earlier sys.path entry, as for imports
                continue
            seen.add(name)
            folder = osp.join(entry or '.', fname)
            for import_name in SUPPORTED:
                if import_name in name.replace('-', '') and _provides(folder, name, import_name):
                    found[import_name].append((name, m.group(2), folder))
    return found


def _undeclared_provider(import_name: str):
    """(distribution, version, None) of an importable ``import_name`` that
    no versioned ``*.dist-info`` folder name declared (a development install),
    or None when it is not importable."""
    import importlib.util
    spec = importlib.util.find_spec(import_name)
    if spec is None:
        return None
    try:
        from importlib import metadata
        for dist in metadata.packages_distributions().get(import_name, ()):
            return _norm(dist), metadata.version(dist), None
    except Exception:  # noqa: BLE001  (broken metadata)
        pass
    return None


def _ops_missing(dist_info: str) -> bool:
    """Whether this mmcv distribution was installed without its compiled ops
    (``mmcv/_ext*.so``, what mmdet, mmseg and RoI heads need): what a build
    without torch in its build environment leaves. False when unknown."""
    try:
        with open(osp.join(dist_info, 'RECORD')) as f:
            record = f.read()
    except OSError:
        return False
    return 'mmcv/_ext' not in record and 'mmcv/__init__.py' in record


def _fix_duplicate(import_name: str, dists: list, family: str) -> str:
    """The commands that leave one distribution of ``import_name``: keep the
    one of the environment's ``family`` (else the first one found)."""
    keep = next((d for d in dists if family_of(d[0]) == family), dists[0])
    drop = ' '.join(d[0] for d in dists if d is not keep)
    return (f'pip uninstall -y {drop} && pip install --force-reinstall --no-deps '
            f'{keep[0]}=={keep[1]}')


def environment_problems(providers=None) -> list:
    """One sentence per problem of the environment (empty when it is
    supported).

    Args:
        providers (dict, optional): import name -> what provides it,
            replacing the lookup (for tests): a version string (the upstream
            distribution of that name), a ``(distribution, version)`` pair,
            a list of pairs (several distributions), or None (not
            installed). Defaults to None: :func:`find_providers`.
    """
    dist_infos = {}
    if providers is None:
        found = find_providers()
        for import_name, dists in found.items():
            if not dists and import_name in REQUIRED:
                extra = _undeclared_provider(import_name)
                found[import_name] = [extra] if extra else []
        dist_infos = {d: folder for dists in found.values() for d, _, folder in dists if folder}
        providers = {k: [(d, v) for d, v, _ in dists] for k, dists in found.items()}
    else:
        providers = {k: [(next(iter(SUPPORTED[k])), v)] if isinstance(v, str) else
                     [v] if isinstance(v, tuple) else list(v or ()) for k, v in providers.items()}
    families = {}  # of the import names with one provider (two: said once, below)
    for import_name, dists in providers.items():
        if len(dists) == 1 and family_of(dists[0][0]):
            families.setdefault(family_of(dists[0][0]), []).append(' '.join(dists[0]))
    # the environment's family: the one most of its OpenMMLab libraries are of
    family = max(families, key=lambda f: len(families[f])) if families else None
    problems = []
    for import_name, ranges in SUPPORTED.items():
        dists = providers.get(import_name) or []
        if len(dists) > 1:
            problems.append(
                f'`{import_name}` is provided by {len(dists)} distributions, ' +
                ' and '.join(f'{d} {v}' for d, v in dists) + ', whose files overwrite or hide '
                'each other (pip cannot tell that both install the same package); keep one: ' +
                _fix_duplicate(import_name, dists, family))
            continue
        if not dists:
            if import_name in REQUIRED:
                problems.append(f'`{import_name}` is not installed (supported: ' +
                                ' or '.join(spec_string(d) for d in ranges) + ')' +
                                (': install one family, pip install "disalign_mm[fork]" '
                                 'or "disalign_mm[upstream]" (docs/install.md)'
                                 if len(ranges) > 1 else ''))
            continue
        (dist, version), = dists
        what = f'{dist} {version}' + ('' if dist == import_name else
                                      f' (import name `{import_name}`)')
        if dist not in ranges:
            problems.append(f'{what} is installed, a distribution disalign_mm does '
                            'not support (supported: ' +
                            ' or '.join(spec_string(d) for d in ranges) + ')')
            continue
        if ranges[dist] is not None:
            low, high = ranges[dist]
            v = version_tuple(version)
            if v < version_tuple(low) or (high is not None and v >= version_tuple(high)):
                problems.append(f'{what} is installed, outside the supported range '
                                f'{spec_string(dist)}')
        if import_name == 'mmcv' and dist in dist_infos and _ops_missing(dist_infos[dist]):
            problems.append(
                f'{dist} {version} was built without its compiled ops (mmcv/_ext), which '
                'mmdet, mmseg and the RoI heads need (pip built it without torch): rebuild it '
                f'for your torch: pip install --no-build-isolation --no-cache-dir '
                f'--force-reinstall --no-deps {dist}=={version}')
    if len(families) > 1:
        problems.append('the OpenMMLab packages mix two families, which refuse each other: ' +
                        '; '.join(f'{f}: ' + ', '.join(families[f]) for f in sorted(families)) +
                        '; install one family (docs/install.md)')
    return problems


def check_environment(force: bool = False) -> None:
    """Raise ImportError naming every problem of :func:`environment_problems`
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
           '\nInstall versions inside the supported ranges (docs/install.md lists them, '
           'and how to change torch and mmcv together: mmcv\'s compiled ops are built for '
           'one torch).')
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
