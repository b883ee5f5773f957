"""The main job and `mim train mmpretrain <stage-2 config>` end to end, on a
tiny Fashion-MNIST-shaped fixture; and the packaged configs for downstream
projects."""
import os.path as osp
import re
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

import disalign_mm.cls  # noqa: F401
from tests.test_cls.fixtures import REPO, make_fmnist, tiny_fmnist_options

pytestmark = pytest.mark.slow  # Runner/mim/pip runs: integration, not the unit loop


@pytest.mark.slow  # two mim train runs
def test_demo_runs_both_stages_through_mim_and_prints_one_table(tmp_path):
    root = make_fmnist(str(tmp_path / 'data'))
    work = tmp_path / 'demo'
    opts = tiny_fmnist_options(root, 'unused', max_epochs=1)
    opts.pop('work_dir')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'demo.py'), '--work-dir', str(work),
           '--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    # both stages went through mim, stage 2 with the stage-1 checkpoint
    assert re.search(r'mim train mmpretrain \S+/resnet-s_1xb128-coslr-8e_fmnist-lt\.py', out)
    assert re.search(r'mim train mmpretrain \S+/disalign_resnet-s_1xb128-coslr-6e_fmnist-lt\.py '
                     r'.*load_from=\S+stage1/epoch_1\.pth', out)
    assert 'DisAlignFreezeHook: 4 parameter tensors' in out
    assert 'ClassCountsHook: 10 classes, 4 to 40 training images per class' in out
    assert osp.isfile(work / 'stage2' / 'epoch_1.pth')
    table = out[out.index('Fashion-MNIST-LT: top-1'):]
    assert 'Many 3 classes (23-40 images), Medium 4 classes (8-18 images), ' \
           'Few 3 classes (4-6 images)' in table
    row = r'\s+(\d+\.\d\d)' * 4
    assert re.search(r'stage 1 \(cross entropy\)' + row, table)
    assert re.search(r'DisAlign \(stage 2\)' + row, table)
    assert 'wall time' in table


def test_demo_without_data_says_what_to_do(tmp_path):
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'demo.py'), '--work-dir', str(tmp_path),
         '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path}'],
        capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode != 0
    assert 'apt-get install -y dataset-fashion-mnist' in proc.stderr


def test_downstream_config_inherits_packaged_stage2(tmp_path):
    cfg_file = tmp_path / 'my_stage2.py'
    cfg_file.write_text(
        "_base_ = 'disalign_mm::fashion_mnist_lt/disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py'\n"
        "model = dict(head=dict(calibration=dict(alpha_init=2.0, "
        "confidence_weight_init=0.1)))\n")
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.model.head.type == 'DisAlignLinearClsHead'
    assert cfg.model.head.loss == dict(type='GRWCrossEntropyLoss', rho=1.2)
    assert [h['type'] for h in cfg.custom_hooks] == ['ClassCountsHook', 'DisAlignFreezeHook']
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert float(model.head.fc.calibration.alpha[0]) == 2.0
    assert float(model.head.fc.calibration.confidence.weight[0, 0]) == pytest.approx(0.1)
