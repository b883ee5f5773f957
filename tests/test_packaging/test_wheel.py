"""The installed package: wheel contents, `disalign_mm::` config bases, and
disalign_mm as a mim codebase (`mim search`, `mim run`), both in the
editable install `make install` makes and from an installed wheel."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.build_utils import run_python

pytestmark = pytest.mark.slow  # Runner/mim/pip runs: integration, not the unit loop

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    osp.relpath(p, osp.join(ROOT, 'configs'))
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p.split(os.sep))
MIM = osp.join(osp.dirname(sys.executable), 'mim')
ADE_CONFIG = 'configs/ade20k/fcn_r50-d8_4xb4-160k_ade20k-512x512.py'


def _config_names():
    return {osp.splitext(osp.basename(c))[0] for c in CONFIGS}


def _tiny_ade(root):
    """Two 8x8 ADE20K-format training masks: raw labels 1 and 150 (classes 0
    and 149 after reduce_zero_label), 0 (ignored)."""
    from PIL import Image
    for d in ('images/training', 'annotations/training'):
        os.makedirs(osp.join(root, d), exist_ok=True)
    masks = {'a': np.ones((8, 8), np.uint8), 'b': np.full((8, 8), 150, np.uint8)}
    masks['b'][:2] = 0
    for name, mask in masks.items():
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
            osp.join(root, 'images', 'training', f'{name}.jpg'))
        Image.fromarray(mask).save(osp.join(root, 'annotations', 'training', f'{name}.png'))
    return str(root)


def _run(code, cwd, *flags):
    """Run python code in a fresh interpreter of this environment (so that
    site.py processes the installed .pth files), outside the repository."""
    return run_python(code, cwd, *flags)


@pytest.mark.slow
def test_wheel_carries_configs_tools_and_pth(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert 'disalign_mm-mim.pth' in names
    assert 'disalign_mm/core/calibration.py' in names
    assert 'disalign_mm/.mim/tools/setup_env.sh' in names
    assert 'disalign_mm/.mim/model-index.yml' in names
    for cfg in CONFIGS:
        assert f'disalign_mm/.mim/configs/{cfg}' in names, cfg
    for meta in glob.glob(osp.join(ROOT, 'configs', '*', 'metafile.yml')):
        assert f'disalign_mm/.mim/{osp.relpath(meta, ROOT)}' in names, meta
    assert not any(n.startswith('tests/') or '__pycache__' in n for n in names)


@pytest.mark.slow
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


@pytest.mark.slow
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


# ------------------------------------------------------------------ mim
def test_model_index_imports_every_metafile_and_lists_every_config():
    """model-index.yml -> configs/*/metafile.yml -> every shipped config, once,
    each with the paper's numbers marked as the paper's (or saying why not)."""
    from modelindex.load_model_index import load
    index = load(osp.join(ROOT, 'model-index.yml'))
    assert not index.check_errors, list(index.check_errors)
    metafiles = sorted(glob.glob(osp.join(ROOT, 'configs', '*', 'metafile.yml')))
    assert len(metafiles) == len({osp.dirname(c) for c in CONFIGS}) == 7
    names = [m.name for m in index.models]
    assert sorted(names) == sorted(_config_names())
    for m in index.models:
        assert osp.isfile(osp.join(ROOT, m.config)), m.config
        assert m.config == f'configs/{osp.basename(osp.dirname(m.config))}/{m.name}.py'
        source = m.metadata.data['Results Source']
        if m.results and m.config.startswith('configs/fashion_mnist_lt/'):
            # not in the paper: `make demo`'s measured run (README's table)
            assert source.startswith('measured here by make demo') and 'not the paper' in source
        elif m.results:
            assert source.startswith('the paper (Table ') and 'not trained by' in source, m.name
        else:
            assert source in ('not in the paper', 'no paper numbers: make demo / make '
                              'benchmark measure them (README)'), m.name
    r50 = {m.name: m for m in index.models}['disalign_resnet50_8xb32-coslr-10e_imagenet-lt']
    assert r50.results[0].metrics == {'Top 1 Accuracy': 51.3, 'Many': 59.9, 'Medium': 49.9,
                                      'Few': 31.8}  # paper Table 10


def _mim(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    return subprocess.run([MIM, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_mim_search_in_the_editable_install(tmp_path):
    """`mim search disalign_mm` finds .mim/model-index.yml of the source tree
    (through disalign_mm-mim.pth, which make install writes)."""
    res = _mim('search', 'disalign_mm', cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'disalign_fcn_r50-d8_8xb4-8k_ade20k-512x512' in res.stdout
    out = tmp_path / 'search.json'
    res = _mim('search', 'disalign_mm', '--json', str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    table = json.loads(out.read_text())
    assert set(table['config']) == _config_names()
    name = 'disalign_mask-rcnn_r50_fpn_cosine_ms-9k_lvis-v0.5'
    assert table['lvis v0.5/box_ap'][name] == 25.6  # paper Table 17
    assert table['results_source'][name].startswith('the paper (table 17')


@pytest.mark.slow
def test_mim_run_tool_in_the_editable_install(tmp_path):
    """`mim run disalign_mm seg_pixel_counts ...` runs tools/seg_pixel_counts.py
    as `mim run mmseg <tool>` runs mmseg's, and `-h` shows its help."""
    root = _tiny_ade(tmp_path / 'ade')
    out = tmp_path / 'counts.json'
    res = _mim('run', 'disalign_mm', 'seg_pixel_counts', osp.join(ROOT, ADE_CONFIG),
               '--out', str(out), '--no-progress', '--cfg-options',
               f'train_dataloader.dataset.data_root={root}', cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    script = osp.join(ROOT, 'disalign_mm', '.mim', 'tools', 'seg_pixel_counts.py')
    assert f'Use the script {script}' in res.stdout
    counts = json.loads(out.read_text())['counts']
    assert (counts[0], counts[149], sum(counts)) == (64, 48, 112)
    res = _mim('run', 'disalign_mm', 'seg_pixel_counts', '-h', cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'not an OpenMMLAB codebase' not in res.stdout + res.stderr
    assert 'usage: seg_pixel_counts.py' in res.stdout


@pytest.mark.slow
def test_mim_search_and_run_from_the_wheel(wheel, tmp_path):
    """From an installed wheel (no editable source tree in sight): mim finds
    the wheel's .mim/model-index.yml and .mim/tools."""
    target = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target',
                    str(target), wheel], check=True)
    site_packages = [p for p in sys.path if p.endswith('site-packages')]
    res = _run(f'''
        import sys
        sys.path[:0] = [{str(target)!r}] + {site_packages!r}
        exec(open({str(target / 'disalign_mm-mim.pth')!r}).read())
        from mim.commands.run import run
        from mim.commands.search import get_model_info
        from mim.utils import get_installed_path
        root = get_installed_path('disalign_mm')
        assert root == {str(target / 'disalign_mm')!r}, root
        df = get_model_info('disalign_mm')
        print('models', len(df))
        print('r50', df.loc['disalign_resnet50_8xb32-coslr-10e_imagenet-lt',
                            'imagenet-lt/top_1_accuracy'])
        ok, msg = run('disalign_mm', 'seg_pixel_counts', other_args=('--help', ))
        assert ok, msg
        ok, msg = run('disalign_mm', 'long_tail_diagnostics', other_args=('--help', ))
        assert ok, msg
        ''', tmp_path, '-S')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f'models {len(CONFIGS)}' in res.stdout
    assert 'r50 51.3' in res.stdout
    script = target / 'disalign_mm' / '.mim' / 'tools' / 'seg_pixel_counts.py'
    assert f'Use the script {script}' in res.stdout
    assert 'usage: seg_pixel_counts.py' in res.stdout
    assert 'usage: long_tail_diagnostics.py' in res.stdout
    assert 'Plot per-class results against training frequency' in res.stdout
