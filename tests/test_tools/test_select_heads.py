"""tools/select_second_stage.py on stage-1 models whose head is not a
LinearClsHead: a ViT with the hidden layer before its classifier, DeiT
(two classifiers, averaged) and MobileNetV3's StackedLinearClsHead (blocks
with BatchNorm before the last fc), each trained here on the user's
image-folder data set with the config a user writes.

End to end for each: every peer and DisAlign runs (the cached features are
the inputs of the head's classifiers, read by forward hooks), the "Stage 1"
row is what ``mim test`` of the stage-1 checkpoint gives, the exported
DisAlign config (``type='DisAlignHead', base_type=<the stage-1 head>``)
loads into the user's model with the stage-1 keys unchanged and the
calibration at ``<classifier>.calibration.*``, ``mim test`` of it gives the
table's accuracy, and mmpretrain's inferencer loads it.
"""
import os.path as osp

import pytest
import torch

from disalign_mm.second_stage import Settings, select_second_stage
from disalign_mm.second_stage.methods import PEERS, Schedule
from tests.test_tools.folder_data import mim_test, stage1_config, train_stage1

pytestmark = pytest.mark.slow  # Runner, mim runs

#: model -> (stage-1 head type, its classifiers)
HEADS = {
    'vit': ('VisionTransformerClsHead', ['layers.head']),
    'deit': ('DeiTClsHead', ['layers.head', 'layers.head_dist']),
    'stacked': ('StackedLinearClsHead', ['layers.1.fc']),
}


@pytest.fixture(scope='module', params=sorted(HEADS))
def selected(request, tmp_path_factory):
    from tests.test_tools.folder_data import make_folder_dataset
    name = request.param
    root = make_folder_dataset(str(tmp_path_factory.mktemp('shapes')))
    work = tmp_path_factory.mktemp(f'{name}_stage1')
    cfg = work / f'my_{name}.py'
    cfg.write_text(stage1_config(root, 'top-level', model=name))
    ckpt = train_stage1(str(cfg), str(work))
    settings = Settings(val_per_class=2, schedule=Schedule(epochs=1), quick=True,
                        export='disalign', many_thr=15, few_thr=6, check_images=0)
    lines = []
    result = select_second_stage(str(cfg), ckpt, str(tmp_path_factory.mktemp(f'{name}_select')),
                                 settings, log=lines.append)
    return name, root, str(cfg), ckpt, result, lines


def test_every_second_stage_runs_and_the_stage1_row_is_mim_test(selected, tmp_path):
    name, _, cfg, ckpt, result, lines = selected
    assert set(result['methods']) == set(PEERS), (result['failed'], result['meta']['skipped'])
    assert any(line.startswith('self-check:') for line in lines)
    stage1 = mim_test(cfg, ckpt, str(tmp_path / 'mim_stage1'))
    assert stage1['accuracy/top1'] == pytest.approx(result['stage1']['test']['top1'], abs=0.01)
    cal = result['methods']['disalign']['calibration']
    if len(HEADS[name][1]) > 1:  # one calibration per classifier
        assert sorted(cal['classifiers']) == HEADS[name][1]
    else:
        assert len(cal['alpha']) == 4


def test_the_export_is_the_users_model_with_the_disalign_head(selected, tmp_path):
    from mmengine.config import Config

    from tests.calibration_keys import calibration_keys
    name, root, cfg, ckpt, result, _ = selected
    head_type, classifiers = HEADS[name]
    exported = result['exported']
    cfg2 = Config.fromfile(exported['config'])
    assert (cfg2.model.head.type, cfg2.model.head.base_type) == ('DisAlignHead', head_type)
    assert cfg2.model.backbone == Config.fromfile(cfg).model.backbone
    assert cfg2.model.get('train_cfg') is None
    stage1 = torch.load(ckpt, weights_only=True)['state_dict']
    state = torch.load(exported['checkpoint'], weights_only=True)['state_dict']
    new = {k for c in classifiers for k in calibration_keys(f'head.{c}.calibration.')}
    assert set(state) == set(stage1) | new
    frozen = [k for k in stage1 if '.calibration.' not in k]
    assert all(torch.equal(state[k], stage1[k]) for k in frozen)
    # mim test of the export gives the table's accuracy
    metrics = mim_test(exported['config'], exported['checkpoint'], str(tmp_path / 'mim'))
    row = result['methods']['disalign']['test']['top1']
    assert metrics['accuracy/top1'] == pytest.approx(row, abs=0.01)
    # and mmpretrain's inference API loads it
    from mmpretrain import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer(exported['config'],
                                               pretrained=exported['checkpoint'])
    (pred, ) = inferencer(osp.join(root, 'test', 'ring', '000.png'))
    assert len(pred['pred_scores']) == 4
    assert type(inferencer.model.head).__name__ == f'DisAlign{head_type}'
