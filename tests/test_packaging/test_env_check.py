"""The import-time check of the environment: cheap (no torch or mm* import),
silent at interpreter start-up (the .pth of the wheel imports the package
then), and clear when a package is outside the supported range: it names
the package, the version found and the range."""
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


def test_problems_name_package_version_and_range():
    ok = {'torch': '2.1.2', 'numpy': '1.26.4', 'mmengine': '0.10.7', 'mmcv': '2.1.0',
          'mmpretrain': '1.2.0', 'mmsegmentation': '1.2.2', 'mmdet': '3.3.0'}
    assert environment_problems(ok) == []
    assert environment_problems(dict(ok, torch='2.15.0', numpy='2.9.0')) == []  # no cap
    # hosts and mmcv are optional: a user may have one host only
    assert environment_problems(dict(ok, mmdet=None, mmsegmentation=None, mmcv=None)) == []
    assert environment_problems(dict(ok, torch='2.0.1', mmcv='2.2.0', mmengine=None)) == [
        'torch 2.0.1 is installed, outside the supported range torch>=2.1',
        'mmengine is not installed (supported: mmengine>=0.10.7,<1.0.0)',
        'mmcv 2.2.0 is installed, outside the supported range mmcv>=2.1.0,<2.2.0',
    ]


def _fake_site(tmp_path, **versions):
    """A directory that, first on sys.path, makes these versions the
    installed ones (dist-info folders are what the check reads)."""
    site = tmp_path / 'fake_site'
    for name, version in versions.items():
        (site / f'{name}-{version}.dist-info').mkdir(parents=True)
    return str(site)


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
    fake = _fake_site(tmp_path, torch='2.0.1', mmcv='2.2.0')
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
    assert 'mmcv 2.2.0 is installed, outside the supported range mmcv>=2.1.0,<2.2.0' in err
    assert 'DISALIGN_MM_SKIP_ENV_CHECK=1' in err
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
    fake = _fake_site(tmp_path, mmdet='3.4.0')
    res = run_python(f'''
        import sys, warnings
        warnings.simplefilter('always')
        sys.path[:0] = [{fake!r}, {ROOT!r}] + {SITE!r}
        import disalign_mm
        print('imported', disalign_mm.__version__)
        ''', tmp_path, '-S', env=dict(__import__('os').environ, DISALIGN_MM_SKIP_ENV_CHECK='1'))
    assert res.returncode == 0, res.stderr
    assert f'imported {disalign_mm.__version__}' in res.stdout
    assert 'mmdet 3.4.0 is installed, outside the supported range mmdet>=3.3.0,<3.4.0' \
        in res.stderr
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
