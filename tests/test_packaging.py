"""The installed package: wheel contents, `disalign_mm::` config bases."""
import glob
import os
import os.path as osp
import subprocess
import sys
import zipfile

import pytest
from _wheel import run_python

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, osp.join(ROOT, 'configs'))
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p.split(os.sep))


def _run(code, cwd, *flags):
    """Run python code in a fresh interpreter of this environment (so that
    site.py processes the installed .pth files), outside the repository."""
    return run_python(code, cwd, *flags)


def test_wheel_carries_configs_tools_and_pth(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert 'disalign_mm-mim.pth' in names
    assert 'disalign_mm/core/calibration.py' in names
    assert 'disalign_mm/.mim/tools/setup_env.sh' in names
    assert 'disalign_mm/.mim/model-index.yml' in names
    for cfg in CONFIGS:
        assert f'disalign_mm/.mim/configs/{cfg}' in names, cfg
    assert not any(n.startswith('tests/') or '__pycache__' in n for n in names)


def test_wheel_installs_and_resolves_configs(wheel, tmp_path):
    target = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target',
                    str(target), wheel], check=True)
    # -S: no site-packages .pth (the editable install would shadow the
    # wheel); the target dir first, then this environment's packages; the
    # wheel's .pth line is run the way site.py would
    site_packages = [p for p in sys.path if p.endswith('site-packages')]
    res = _run(f'''
        import sys
        sys.path[:0] = [{str(target)!r}] + {site_packages!r}
        exec(open({str(target / 'disalign_mm-mim.pth')!r}).read())
        import disalign_mm.mim_scope as m
        assert m.package_root().startswith({str(target)!r}), m.package_root()
        from mmengine.config.utils import MODULE2PACKAGE
        from mmengine.config import config
        assert 'disalign_mm' in MODULE2PACKAGE
        print(config.get_installed_path('disalign_mm'))
        ''', tmp_path, '-S')
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(target / 'disalign_mm')
    if CONFIGS:
        assert osp.isfile(target / 'disalign_mm' / '.mim' / 'configs' / CONFIGS[0])


def test_source_tree_mim_links_to_top_level_folders():
    for name in ('configs', 'tools', 'model-index.yml'):
        link = osp.join(ROOT, 'disalign_mm', '.mim', name)
        assert osp.islink(link) and osp.realpath(link) == osp.join(ROOT, name)


@pytest.mark.skipif(not CONFIGS, reason='no configs yet')
def test_every_config_resolves_as_a_downstream_base(tmp_path):
    """A config anywhere on disk can say _base_ = 'disalign_mm::<path>'."""
    for i, cfg in enumerate(CONFIGS):
        (tmp_path / f'user_{i}.py').write_text(f"_base_ = 'disalign_mm::{cfg}'\n")
    res = _run(f'''
        from mmengine.config import Config
        for i in range({len(CONFIGS)}):
            cfg = Config.fromfile(f'user_{{i}}.py')
            assert cfg.model.type, i
            # host configs: built in their default_scope, not a 'disalign_mm' one
            assert cfg.model.get('_scope_') != 'disalign_mm', i
            assert cfg.default_scope in ('mmpretrain', 'mmseg', 'mmdet'), i
        print('parsed', {len(CONFIGS)})
        ''', tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f'parsed {len(CONFIGS)}' in res.stdout


def test_unknown_package_base_still_fails_clearly(tmp_path):
    (tmp_path / 'user.py').write_text("_base_ = 'disalign_mm::no_such/config.py'\n")
    res = _run("from mmengine.config import Config; Config.fromfile('user.py')", tmp_path)
    assert res.returncode != 0 and 'no_such/config.py' in res.stderr
