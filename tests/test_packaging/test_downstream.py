"""A downstream project, for real: the wheel goes into an environment that
already holds the host stack, of either OpenMMLab family, and pip changes
nothing but disalign_mm (no distribution of the other family, nothing
replaced: the same for ``pip install -e .``); then,
from a directory outside the repository, configs that inherit
``disalign_mm::`` stage-1/stage-2 configs train through ``mim train``, and
mmpretrain's own ImageClassificationInferencer runs the stage-2 checkpoint
on an image.

The environment: a fresh venv whose ``host.pth`` puts the host stack on its
path, i.e. the packages of the environment running this test (.venv or
.venv-oldest), seen through a folder of symbolic links that leaves out
disalign_mm's own editable install. Nothing is written into that
environment (checked). The other family's environment is its stack's
distributions as pip sees them (``*.dist-info`` folders with their names
and versions, requirements/stack-*.txt): pip decides what to install from
metadata alone, so that is what the claim is about."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import sysconfig

import pytest

import disalign_mm
from tests.build_utils import ROOT, run_python

# the packaged configs the downstream project inherits (one place to rename)
STAGE1 = 'fashion_mnist_lt/resnet-s_1xb128-coslr-8e_fmnist-lt.py'
STAGE2 = 'fashion_mnist_lt/disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py'

pytestmark = pytest.mark.slow


def _cls_fixtures():
    """Tiny Fashion-MNIST-shaped data and the options that shrink those configs."""
    from tests.test_cls import fixtures
    return fixtures


def _pip(python, *args):
    """This environment's pip, acting on the environment of ``python``."""
    return subprocess.run([sys.executable, '-m', 'pip', '--disable-pip-version-check',
                           '--python', python, *args], capture_output=True, text=True,
                          timeout=600)


def _family_of_this_stack():
    return disalign_mm.family_of(disalign_mm.find_providers()['mmcv'][0][0])


def _stack_of(family):
    """The pins of the CI stack of ``family`` (requirements/stack-*.txt)."""
    for path in sorted(glob.glob(osp.join(ROOT, 'requirements', 'stack-*.txt'))):
        pins = {}
        for line in open(path):
            name, sep, version = line.split('#', 1)[0].strip().partition('==')
            if sep:
                pins[name] = version
        if ('onedl-mmcv' in pins) == (family == 'fork'):
            return pins
    raise AssertionError(f'no stack of the {family} family')


def _metadata_only_site(site, pins):
    """``site`` holding the distributions of ``pins`` as pip sees them."""
    for name, version in pins.items():
        info = site / f'{name.replace("-", "_")}-{version}.dist-info'
        info.mkdir(parents=True)
        (info / 'METADATA').write_text(
            f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')
        (info / 'INSTALLER').write_text('pip\n')
        (info / 'RECORD').write_text('')


def _install(base, site_dir, wheel, editable=False):
    """A venv whose host.pth puts ``site_dir`` on its path; pip freeze
    before and after installing ``wheel`` (or ``-e`` this checkout, as a
    dry run), and pip's install report."""
    env = base / 'env'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(env)], check=True)
    python = str(env / 'bin' / 'python')
    env_site = run_python('import sysconfig; print(sysconfig.get_paths()["purelib"])',
                          base, python=python).stdout.strip()
    with open(osp.join(env_site, 'host.pth'), 'w') as f:
        f.write(f'{site_dir}\n')
    before = _pip(python, 'freeze', '--all')
    assert before.returncode == 0, before.stderr
    report = base / 'report.json'
    if editable:
        res = _pip(python, 'install', '--no-index', '--no-build-isolation', '--dry-run',
                   '--report', str(report), '-e', ROOT)
    else:
        res = _pip(python, 'install', '--no-index', '--report', str(report), wheel)
    assert res.returncode == 0, res.stdout + res.stderr
    after = _pip(python, 'freeze', '--all')
    return dict(python=python, env=str(env), before=before.stdout.splitlines(),
                after=after.stdout.splitlines(), report=json.loads(report.read_text()))


def _overlay_of_this_stack(base):
    """This test's own site-packages, through links, without disalign_mm."""
    host_site = sysconfig.get_paths()['purelib']
    overlay = base / 'host_site'
    overlay.mkdir()
    for name in sorted(os.listdir(host_site)):
        if 'disalign_mm' not in name:  # this checkout's editable install
            os.symlink(osp.join(host_site, name), overlay / name)
    return host_site, overlay


@pytest.fixture(scope='module')
def downstream_env(tmp_path_factory, wheel):
    """The wheel in an environment of this stack's family, for real:
    (python of the downstream venv, pip freeze before, after, install report)."""
    base = tmp_path_factory.mktemp('downstream_env')
    host_site, overlay = _overlay_of_this_stack(base)
    host_before = sorted(os.listdir(host_site))
    out = _install(base, overlay, wheel)
    assert sorted(os.listdir(host_site)) == host_before, 'the host environment was modified'
    return dict(out, host_site=host_site)


def _assert_only_disalign_mm_added(env, editable=False):
    before, after = set(env['before']), set(env['after'])
    assert not any(line.lower().startswith('disalign') for line in before)
    installed = [(i['metadata']['name'].replace('-', '_'), i['metadata']['version'])
                 for i in env['report']['install']]
    assert installed == [('disalign_mm', disalign_mm.__version__)], installed
    if editable:  # a dry run: nothing changed
        assert after == before
        return
    (added, ) = after - before  # pip writes a wheel file install as 'name @ file://...'
    assert added.replace('-', '_').startswith((f'disalign_mm=={disalign_mm.__version__}',
                                               'disalign_mm @ file:')), added
    assert before - after == set()


def test_pip_changes_nothing_but_disalign_mm(downstream_env):
    _assert_only_disalign_mm_added(downstream_env)
    # what the wheel declared: ranges only, no torch, and no OpenMMLab
    # distribution outside the family extras (pip cannot know that one
    # family provides the other's import names)
    requires = downstream_env['report']['install'][0]['metadata']['requires_dist']
    assert not any('==' in r.split(';')[0] for r in requires), requires
    core = [r for r in requires if 'extra ==' not in r]
    assert core == ['numpy'], core
    extras = {}
    for r in requires:
        if 'extra ==' in r:
            req, extra = r.split(';')
            extras.setdefault(extra.split('==')[1].strip().strip('"\''), []).append(req.strip())
    assert {'upstream', 'fork', 'mim', 'tests', 'optional'} <= set(extras), extras
    assert all(not r.startswith('onedl') for r in extras['upstream']), extras['upstream']
    assert all(r.startswith('onedl') for r in extras['fork']), extras['fork']
    assert extras['mim'] == extras['upstream']


@pytest.mark.parametrize('family', ['upstream', 'fork'])
def test_wheel_into_either_family_changes_nothing_else(family, wheel, tmp_path, request):
    """This stack's family: its real site-packages; the other family: its
    CI stack as pip sees it. Before 0.2 the wheel required `mmengine`, and
    pip installed upstream mmengine over onedl-mmengine."""
    if family == _family_of_this_stack():
        env = request.getfixturevalue('downstream_env')
    else:
        site = tmp_path / 'site'
        _metadata_only_site(site, _stack_of(family))
        env = _install(tmp_path, site, wheel)
    _assert_only_disalign_mm_added(env)
    names = {line.split('==')[0].split(' @ ')[0].lower().replace('_', '-')
             for line in env['after']}
    other = 'upstream' if family == 'fork' else 'fork'
    assert set(disalign_mm.FAMILIES[family]) <= names, (family, names)
    assert not set(disalign_mm.FAMILIES[other]) & names, (family, names)


def test_editable_install_changes_nothing_else(tmp_path):
    """`pip install -e .` into this stack (a dry run): disalign_mm alone."""
    _, site = _overlay_of_this_stack(tmp_path)
    _assert_only_disalign_mm_added(_install(tmp_path, site, None, editable=True), editable=True)


def test_downstream_project_trains_stage2_with_mim_and_infers(downstream_env, tmp_path):
    fx = _cls_fixtures()
    python = downstream_env['python']
    project = tmp_path / 'project'  # outside the repository
    project.mkdir()
    data = fx.make_fmnist(str(tmp_path / 'data'))
    (project / 'my_stage1.py').write_text(f"_base_ = 'disalign_mm::{STAGE1}'\n")
    (project / 'my_stage2.py').write_text(
        f"_base_ = 'disalign_mm::{STAGE2}'\n"
        '# a downstream choice: the official classification start of the calibration\n'
        'model = dict(head=dict(calibration=dict(alpha_init=2.0, '
        'confidence_weight_init=0.1)))\n')
    opts1 = fx.tiny_fmnist_options(data, str(project / 'stage1'), max_epochs=1)
    # stage 2: one iteration (the whole tiny training set is one batch)
    opts2 = dict(fx.tiny_fmnist_options(data, str(project / 'stage2'), max_epochs=1),
                 **{'train_dataloader.batch_size': 512})

    def mim_train(cfg, opts):
        cmd = [python, '-m', 'mim', 'train', 'mmpretrain', cfg, '--cfg-options'] + \
            [f'{k}={v}' for k, v in opts.items()]
        env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
        res = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True,
                             timeout=900)
        assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
        return res.stdout + res.stderr

    mim_train('my_stage1.py', opts1)
    stage1 = project / 'stage1' / 'epoch_1.pth'
    assert stage1.is_file()
    out = mim_train('my_stage2.py', dict(opts2, load_from=str(stage1)))
    assert 'DisAlignFreezeHook: 4 parameter tensors' in out
    assert 'Epoch(train) [1][1/1]' in out
    stage2 = project / 'stage2' / 'epoch_1.pth'
    assert stage2.is_file()

    res = run_python(f'''
        import gzip, os.path as osp
        import numpy as np, torch
        from mmengine.config import Config
        from mmpretrain import ImageClassificationInferencer
        import disalign_mm
        # the wheel installed in the downstream venv, not the repository
        assert disalign_mm.__file__.startswith({downstream_env['env']!r}), disalign_mm.__file__
        cfg = Config.fromfile('my_stage2.py')
        cfg.merge_from_dict({opts2!r})
        inferencer = ImageClassificationInferencer(cfg, pretrained={str(stage2)!r},
                                                   device='cpu')
        # every weight of the stage-2 checkpoint, calibration included, is in use
        from disalign_mm.engine.checkpoint import safe_load
        state = safe_load({str(stage2)!r})['state_dict']
        model = inferencer.model.state_dict()
        assert set(model) == set(state), set(model) ^ set(state)
        assert all(torch.equal(model[k], state[k]) for k in state)
        print('head', type(inferencer.model.head).__name__)
        with gzip.open(osp.join({data!r}, 't10k-images-idx3-ubyte.gz')) as f:
            image = np.frombuffer(f.read()[16:16 + 28 * 28], np.uint8).reshape(28, 28, 1)
        res = inferencer(image)[0]
        print('pred', res['pred_label'], round(float(sum(res['pred_scores'])), 4))
        ''', project, python=python)
    assert res.returncode == 0, res.stdout + res.stderr[-6000:]
    assert 'head DisAlignLinearClsHead' in res.stdout
    pred = res.stdout.split('pred ')[1].split()
    assert 0 <= int(pred[0]) < 10 and float(pred[1]) == pytest.approx(1.0)
