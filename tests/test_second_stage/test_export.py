"""disalign_mm.second_stage.export: the exported checkpoint is the stage-1 weights
with the trained head, and it must fit its config exactly."""
import pytest
import torch

from disalign_mm.benchmarks.configs import config_path
from disalign_mm.second_stage.config import load_config
from disalign_mm.second_stage.export import check_loads, save_stage2_checkpoint
from disalign_mm.second_stage.stage2 import build_stage2_model


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    from mmpretrain.registry import MODELS
    cfg1 = load_config(config_path('fmnist_stage1'))
    model = MODELS.build(cfg1.model)
    ckpt = str(tmp_path_factory.mktemp('ckpt') / 'stage1.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=8)), ckpt)
    return model, ckpt


def test_export_replaces_the_head_and_keeps_the_rest(stage1, tmp_path):
    model, ckpt = stage1
    cfg2 = load_config(config_path('fmnist_disalign'))
    head_state = {k[len('head.'):]: v for k, v in model.state_dict().items()
                  if k.startswith('head.')}
    trained = build_stage2_model(cfg2, head_state, [100] * 10, seed=0)
    with torch.no_grad():
        trained.head.fc.calibration.alpha.fill_(1.5)
    path = save_stage2_checkpoint(str(tmp_path / 'stage2.pth'), cfg2, ckpt, trained.head,
                                  classes=[str(i) for i in range(10)], meta=dict(method='x'))
    out = torch.load(path, weights_only=True)
    state = out['state_dict']
    assert torch.equal(state['head.fc.calibration.alpha'], torch.full((10, ), 1.5))
    assert torch.equal(state['head.fc.weight'], model.head.fc.weight)
    assert torch.equal(state['backbone.conv1.weight'], model.backbone.conv1.weight)
    assert out['meta']['dataset_meta']['classes'][3] == '3'
    assert out['meta']['disalign_mm']['method'] == 'x'
    assert len(out['meta']['disalign_mm']['stage1_sha256']) == 64


def test_a_checkpoint_that_does_not_fit_is_refused(stage1):
    model, _ = stage1
    cfg2 = load_config(config_path('fmnist_disalign'))
    with pytest.raises(RuntimeError, match=r"missing \['head.fc.calibration"):
        check_loads(cfg2, model.state_dict(), 'x.pth')
