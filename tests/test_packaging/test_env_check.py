"""The import-time check of the environment: cheap (no torch or mm* import),
silent at interpreter start-up (the .pth of the wheel imports the package
then), and clear when a package is outside the supported range: it names
the distribution that provides the import name (upstream or fork), the
version found and the range; and when two distributions provide the same
import name, naming both and the fix."""
import os.path as osp
import sys

import pytest

import disalign_mm
from disalign_mm import environment_problems, version_tuple
from tests.build_utils import ROOT, run_python

SITE = [p for p in sys.path if p.endswith('site-packages')]


def test_version_order():
    assert version_tuple('2.14.1+cu130') == (2, 14, 1, 0)
    assert version_tuple('2.1') == version_tuple('2.1.0') < version_tuple('2.1.2')
    assert version_tuple('2.2.0rc1') < version_tuple('2.2.0') < version_tuple('2.2.0.post1') \
        or version_tuple('2.2.0') == version_tuple('2.2.0.post1')
    assert version_tuple('0.10.7') < version_tuple('1.0.0')
    with pytest.raises(ValueError):
        version_tuple('abc')


UPSTREAM = {'torch': '2.1.2', 'numpy': '1.26.4', 'mmengine': '0.10.7', 'mmcv': '2.1.0',
            'mmpretrain': '1.2.0', 'mmseg': '1.2.2', 'mmdet': '3.3.0', 'mim': ('openmim', '0.3.9')}
FORK = dict(UPSTREAM, mmengine=('onedl-mmengine', '0.10.12'), mmcv=('onedl-mmcv', '2.3.6'),
            mmpretrain=('onedl-mmpretrain', '1.3.6'), mmseg=('onedl-mmsegmentation', '1.4.2'),
            mmdet=('onedl-mmdetection', '3.5.1'), mim=('onedl-mim', '0.5.1'))


def test_problems_name_distribution_version_and_range():
    assert environment_problems(UPSTREAM) == []
    assert environment_problems(dict(UPSTREAM, torch='2.15.0', numpy='2.9.0')) == []  # no cap
    # hosts and mmcv are optional: a user may have one host only
    assert environment_problems(dict(UPSTREAM, mmdet=None, mmseg=None, mmcv=None)) == []
    assert environment_problems(dict(UPSTREAM, torch='2.0.1', mmcv='2.2.0', mmengine=None)) == [
        'torch 2.0.1 is installed, outside the supported range torch>=2.1',
        '`mmengine` is not installed (supported: mmengine>=0.10.7,<1.0.0 or '
        'onedl-mmengine>=0.10.12,<1.0.0): install one family, pip install '
        '"disalign_mm[fork]" or "disalign_mm[upstream]" (docs/install.md)',
        'mmcv 2.2.0 is installed, outside the supported range mmcv>=2.1.0,<2.2.0',
    ]
    # the import name differs from the distribution name: both are said
    assert environment_problems(dict(UPSTREAM, mmseg='1.3.0')) == [
        'mmsegmentation 1.3.0 (import name `mmseg`) is installed, outside the supported range '
        'mmsegmentation>=1.2.2,<1.3.0']


def test_fork_family_has_its_own_ranges():
    assert environment_problems(FORK) == []
    # the fork's versions are judged by the fork's ranges, not upstream's
    assert environment_problems(dict(FORK, mmcv=('onedl-mmcv', '2.4.0'),
                                     mmengine=('onedl-mmengine', '0.10.11'))) == [
        'onedl-mmengine 0.10.11 (import name `mmengine`) is installed, outside the supported '
        'range onedl-mmengine>=0.10.12,<1.0.0',
        'onedl-mmcv 2.4.0 (import name `mmcv`) is installed, outside the supported range '
        'onedl-mmcv>=2.3.6,<2.4.0',
    ]
    # mim, a command, may come from either family
    assert environment_problems(dict(FORK, mim=('openmim', '0.3.9'))) == []


def test_two_distributions_of_one_import_name_name_both_and_the_fix():
    """What `pip install` of a wheel requiring `mmengine` left in a fork
    environment: upstream mmengine written over onedl-mmengine."""
    problems = environment_problems(dict(
        FORK, mmengine=[('onedl-mmengine', '0.10.12'), ('mmengine', '0.10.7')]))
    assert problems == [
        '`mmengine` is provided by 2 distributions, onedl-mmengine 0.10.12 and mmengine '
        '0.10.7, whose files overwrite or hide each other (pip cannot tell that both install '
        'the same package); keep one: pip uninstall -y mmengine && pip install '
        '--force-reinstall --no-deps onedl-mmengine==0.10.12']
    # in an upstream environment the fork's distribution is the one to go
    problems = environment_problems(dict(
        UPSTREAM, mmcv=[('mmcv', '2.1.0'), ('onedl-mmcv', '2.3.6')]))
    assert problems[0].endswith('keep one: pip uninstall -y onedl-mmcv && pip install '
                                '--force-reinstall --no-deps mmcv==2.1.0')


def test_unknown_distribution_and_mixed_families():
    assert environment_problems(dict(UPSTREAM, mmcv=('mmcv-lite', '2.1.0'))) == [
        'mmcv-lite 2.1.0 (import name `mmcv`) is installed, a distribution disalign_mm does '
        'not support (supported: mmcv>=2.1.0,<2.2.0 or onedl-mmcv>=2.3.6,<2.4.0)']
    assert environment_problems(dict(UPSTREAM, mmdet=('onedl-mmdetection', '3.5.1'))) == [
        'the OpenMMLab packages mix two families, which refuse each other: fork: '
        'onedl-mmdetection 3.5.1; upstream: mmengine 0.10.7, mmcv 2.1.0, mmpretrain 1.2.0, '
        'mmsegmentation 1.2.2; install one family (docs/install.md)']


def _dist_info(site, name, version, top_level=None, record=None):
    """A ``*.dist-info`` folder of ``name`` ``version`` in ``site``, with an
    optional top_level.txt and RECORD (the files the check reads)."""
    folder = site / f'{name.replace("-", "_")}-{version}.dist-info'
    folder.mkdir(parents=True)
    if top_level is not None:
        (folder / 'top_level.txt').write_text(top_level)
    if record is not None:
        (folder / 'RECORD').write_text(record)
    return folder


def _fake_site(tmp_path, **versions):
    """A directory that, first on sys.path, makes these versions the
    installed ones (dist-info folders are what the check reads)."""
    site = tmp_path / 'fake_site'
    for name, version in versions.items():
        _dist_info(site, name, version)
    return str(site)


def test_providers_are_found_by_import_name(tmp_path):
    """The distribution behind an import name, whatever it is called: the
    known ones by name, others by their top_level.txt or RECORD; a
    distribution shadowed by an earlier sys.path entry is not seen, a
    second distribution of the same import name is."""
    site = tmp_path / 'site'
    _dist_info(site, 'onedl-mmengine', '0.10.12')
    _dist_info(site, 'mmengine', '0.10.7')
    _dist_info(site, 'torchvision', '0.29.1', top_level='torchvision\n')  # not torch
    _dist_info(site, 'torch', '2.14.1+cu130')  # no top_level.txt (as torch's wheels)
    _dist_info(site, 'my-mmcv-build', '2.1.0', top_level='mmcv\n')
    _dist_info(site, 'mmdet-extras', '0.1', record='mmdet_extras/__init__.py,sha256=x,1\n')
    _dist_info(site, 'mmseg-fork', '1.2.2',
               record='mmseg/__init__.py,sha256=x,1\nmmseg/version.py,sha256=x,1\n')
    later = tmp_path / 'later'
    _dist_info(later, 'numpy', '1.26.4')
    _dist_info(later, 'torch', '2.1.2')  # shadowed by site's torch
    found = disalign_mm.find_providers([str(site), str(later)])
    names = {k: [(d, v) for d, v, _ in dists] for k, dists in found.items()}
    assert names == {
        'torch': [('torch', '2.14.1+cu130')],
        'numpy': [('numpy', '1.26.4')],
        'mmengine': [('mmengine', '0.10.7'), ('onedl-mmengine', '0.10.12')],
        'mmcv': [('my-mmcv-build', '2.1.0')],
        'mmpretrain': [],
        'mmseg': [('mmseg-fork', '1.2.2')],
        'mmdet': [],
        'mim': [],
    }
    assert found['numpy'][0][2] == str(later / 'numpy-1.26.4.dist-info')


def _this_stack(import_name):
    """The distribution that provides ``import_name`` in the environment
    running the tests (upstream or fork)."""
    (dist, _, _), = disalign_mm.find_providers()[import_name]
    return dist


def _beyond_cap(import_name):
    """(the distribution of this stack, its first unsupported version, the
    problem that version is)."""
    dist = _this_stack(import_name)
    cap = disalign_mm.SUPPORTED[import_name][dist][1]
    what = f'{dist} {cap}' + ('' if dist == import_name else f' (import name `{import_name}`)')
    return dist, cap, (f'{what} is installed, outside the supported range '
                       f'{disalign_mm.spec_string(dist)}')


def test_mmcv_without_ops_is_a_problem(tmp_path):
    """mmcv built by pip without torch in its build environment (a plain
    `pip install` of onedl-mmcv's source distribution) has no mmcv/_ext."""
    site = tmp_path / 'site'
    dist = _this_stack('mmcv')
    _dist_info(site, dist, '2.3.6',
               record='mmcv/__init__.py,sha256=x,1\nmmcv/version.py,sha256=x,1\n')
    res = run_python(f'''
        import sys
        sys.path[:0] = [{str(site)!r}, {ROOT!r}] + {SITE!r}
        import disalign_mm
        ''', tmp_path, '-S')
    assert res.returncode != 0
    assert (f'{dist} 2.3.6 was built without its compiled ops (mmcv/_ext), which mmdet, '
            'mmseg and the RoI heads need') in res.stderr
    assert 'pip install --no-build-isolation --no-cache-dir --force-reinstall --no-deps ' \
        f'{dist}==2.3.6' in res.stderr


def test_import_is_cheap(tmp_path):
    res = run_python('''
        import sys
        import disalign_mm
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in
                       ('torch', 'numpy', 'mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain',
                        'importlib.metadata'))
        print(heavy)
        ''', tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == '[]'


def test_out_of_range_import_fails_clearly(tmp_path):
    mmcv, cap, mmcv_problem = _beyond_cap('mmcv')
    fake = _fake_site(tmp_path, torch='2.0.1', **{mmcv: cap})
    # without the .pth pre-import (-S): at `import disalign_mm`
    res = run_python(f'''
        import sys
        sys.path[:0] = [{fake!r}, {ROOT!r}] + {SITE!r}
        import disalign_mm
        ''', tmp_path, '-S')
    assert res.returncode != 0
    err = res.stderr
    assert (f'ImportError: disalign_mm {disalign_mm.__version__} does not support this '
            'environment') in err
    assert 'torch 2.0.1 is installed, outside the supported range torch>=2.1' in err
    assert mmcv_problem in err
    assert 'DISALIGN_MM_SKIP_ENV_CHECK=1' in err
    assert 'docs/install.md' in err
    assert 'Traceback' in err and err.count('File "') <= 3  # not from deep inside a host
    # in an installed environment (the .pth imported the package at start-up):
    # at `import disalign_mm.cls` and friends, through disalign_mm.engine
    res = run_python(f'''
        import sys
        sys.path.insert(0, {fake!r})
        import disalign_mm.engine
        ''', tmp_path)
    assert res.returncode != 0
    assert 'torch 2.0.1 is installed, outside the supported range torch>=2.1' in res.stderr


def test_skip_variable_turns_the_error_into_a_warning(tmp_path):
    mmdet, cap, mmdet_problem = _beyond_cap('mmdet')
    fake = _fake_site(tmp_path, **{mmdet: cap})
    res = run_python(f'''
        import sys, warnings
        warnings.simplefilter('always')
        sys.path[:0] = [{fake!r}, {ROOT!r}] + {SITE!r}
        import disalign_mm
        print('imported', disalign_mm.__version__)
        ''', tmp_path, '-S', env=dict(__import__('os').environ, DISALIGN_MM_SKIP_ENV_CHECK='1'))
    assert res.returncode == 0, res.stderr
    assert f'imported {disalign_mm.__version__}' in res.stdout
    assert mmdet_problem in res.stderr
    assert 'going on regardless' in res.stderr


def test_silent_at_interpreter_start_up(tmp_path):
    """The wheel's .pth imports disalign_mm while site.py runs, when
    sys.path is still incomplete: no check (and no output) then."""
    fake = _fake_site(tmp_path, torch='2.0.1')
    pth_dir = tmp_path / 'pth'
    pth_dir.mkdir()
    (pth_dir / 'zz-disalign.pth').write_text('import disalign_mm\n')
    res = run_python(f'''
        import sys, site
        sys.path[:0] = [{fake!r}, {ROOT!r}] + {SITE!r}
        site.addsitedir({str(pth_dir)!r})
        print('started', 'disalign_mm' in sys.modules)
        import disalign_mm.engine
        ''', tmp_path, '-S')
    assert res.stdout.strip() == 'started True'
    assert 'Error processing line' not in res.stderr
    assert 'torch 2.0.1 is installed, outside the supported range' in res.stderr


def test_this_environment_passes():
    disalign_mm.check_environment(force=True)
    assert osp.isdir(osp.join(ROOT, 'disalign_mm'))
