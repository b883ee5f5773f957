"""disalign_mm.bench.features: the frozen stage-1 features, cached and
reused only for the same checkpoint, model and data."""
import copy
import os
import os.path as osp

import pytest
import torch

from disalign_mm.bench.features import (cache_key, cached_features, class_counts,
                                        without_augmentation)
from tests.test_cls.fixtures import FMNIST_STAGE1, load_cfg, make_fmnist, tiny_fmnist_options


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    """A stage-1 checkpoint of the tiny config (random weights: no training
    needed to test the cache)."""
    from mmpretrain.registry import MODELS
    root = make_fmnist(str(tmp_path_factory.mktemp('fmnist')))
    cfg = load_cfg(FMNIST_STAGE1, tiny_fmnist_options(root, 'unused'))
    model = MODELS.build(cfg.model)
    ckpt = str(tmp_path_factory.mktemp('ckpt') / 'stage1.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return cfg, ckpt, model


def test_features_are_the_models_and_reused(stage1, tmp_path):
    cfg, ckpt, model = stage1
    datasets = dict(test=without_augmentation(cfg.test_dataloader.dataset.to_dict()))
    path = str(tmp_path / 'features.pth')
    lines = []
    data = cached_features(path, cfg, ckpt, datasets, name='seed 0', log=lines.append)
    assert lines[-1].startswith('seed 0: features of the frozen stage-1 model (test 60) in ')
    assert os.listdir(tmp_path) == ['features.pth']  # no temporary file left
    # the classifier's input of the model in eval mode, and the head's weights
    model.eval()
    from mmengine.dataset import pseudo_collate
    from mmpretrain.registry import DATASETS
    ds = DATASETS.build(datasets['test'])
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(4)]), False)
    with torch.no_grad():
        want = model.head.pre_logits(model.extract_feat(batch['inputs']))
    torch.testing.assert_close(data['test']['feats'][:4], want)
    assert data['test']['labels'][:4].tolist() == [int(d.gt_label) for d in
                                                   batch['data_samples']]
    assert torch.equal(data['head_state']['fc.weight'], model.head.fc.weight)
    assert class_counts(data, 'test', 12).tolist() == [6] * 10 + [0, 0]

    lines.clear()
    again = cached_features(path, cfg, ckpt, datasets, name='seed 0', log=lines.append)
    assert lines == [f'seed 0: reusing features {path}']
    assert torch.equal(again['test']['feats'], data['test']['feats'])
    # another model, other data or another checkpoint file (its time): another key
    key = cache_key(cfg, ckpt, datasets)
    cfg2 = copy.deepcopy(cfg)
    cfg2.model.head.topk = (1, 2)
    assert cache_key(cfg2, ckpt, datasets) != key
    assert cache_key(cfg, ckpt, dict(test=dict(datasets['test'], n_max=20))) != key
    os.utime(ckpt, (osp.getmtime(ckpt) + 10, ) * 2)
    assert cache_key(cfg, ckpt, datasets) != key
    lines.clear()  # and another key means computed again
    cached_features(path, cfg, ckpt, datasets, log=lines.append)
    assert lines[0].startswith('features of the frozen stage-1 model'), lines
