"""disalign_mm.second_stage.features: the frozen stage-1 outputs, cached, reused
only for the same checkpoint, model and data, and resumed after an
interruption."""
import copy
import json
import os

import pytest
import torch

from disalign_mm.second_stage import features as F
from disalign_mm.second_stage.features import cached_features, class_counts
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


def _cache_folders(path):
    """The cache folders under a cache root (one per key)."""
    return sorted(os.path.join(path, d) for d in os.listdir(path)
                  if os.path.isfile(os.path.join(path, d, F.MANIFEST)))


def _datasets(cfg):
    return dict(test=dict(cfg.test_dataloader.dataset.to_dict(),
                          pipeline=[dict(type='PackInputs')]))


def test_outputs_are_the_models_and_reused(stage1, tmp_path):
    cfg, ckpt, model = stage1
    datasets = _datasets(cfg)
    path = str(tmp_path / 'cache')
    lines = []
    data = cached_features(path, cfg, ckpt, datasets, log=lines.append, progress=False)
    assert lines[0] == 'stage-1 outputs of test 60 images on cpu'
    (folder, ) = _cache_folders(path)
    assert not [f for f in os.listdir(folder) if f.endswith('.tmp')]
    # the classifier's input and the logits of the model in eval mode, the head's weights
    model.eval()
    from mmengine.dataset import pseudo_collate
    from mmpretrain.registry import DATASETS
    ds = DATASETS.build(datasets['test'])
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(4)]), False)
    with torch.no_grad():
        want = model.head.pre_logits(model.extract_feat(batch['inputs']))
    torch.testing.assert_close(data['test']['feats'][:4], want)
    torch.testing.assert_close(data['test']['logits'][:4], model.head.fc(want))
    assert data['test']['labels'][:4].tolist() == [int(d.gt_label) for d in
                                                   batch['data_samples']]
    assert torch.equal(data['head_state']['fc.weight'], model.head.fc.weight)
    assert data['meta']['num_classes'] == 10 and data['meta']['classes'][0] == 'T-shirt/top'
    assert class_counts(data['test'], 12) == [6] * 10 + [0, 0]

    lines.clear()
    again = cached_features(path, cfg, ckpt, datasets, log=lines.append)
    assert lines == [f'reusing the stage-1 outputs in {folder}']
    assert torch.equal(again['test']['feats'], data['test']['feats'])

    # another model config, other data, another checkpoint: rebuilt, saying why
    cfg2 = copy.deepcopy(cfg)
    cfg2.model.head.topk = (1, 2)
    lines.clear()
    cached_features(path, cfg2, ckpt, datasets, log=lines.append, progress=False)
    assert 'were made from another model config: computing them again' in lines[0]
    lines.clear()
    cached_features(path, cfg2, ckpt, dict(test=dict(datasets['test'], n_max=20)),
                    log=lines.append, progress=False)
    assert 'another data set config of test' in lines[0]
    other = str(tmp_path / 'other.pth')
    state = {k: v + 1 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(dict(state_dict=state), other)
    lines.clear()
    third = cached_features(path, cfg2, other, dict(test=dict(datasets['test'], n_max=20)),
                            log=lines.append, progress=False)
    assert 'another checkpoint' in lines[0]
    assert not torch.equal(third['head_state']['fc.weight'], data['head_state']['fc.weight'])


def test_interrupted_extraction_resumes(stage1, tmp_path, monkeypatch):
    """Shards are written one at a time; an interruption leaves a cache marked
    incomplete, which is never read as complete: the next run resumes at the
    first missing shard and ends with what an uninterrupted run gives."""
    cfg, ckpt, _ = stage1
    datasets = _datasets(cfg)
    full = cached_features(str(tmp_path / 'full'), cfg, ckpt, datasets, progress=False,
                           log=lambda m: None)
    real_add = F.FeatureCache.add_shard
    calls = []

    def add_then_fail(self, split, data):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(split)
        real_add(self, split, data)

    path = str(tmp_path / 'cache')
    monkeypatch.setattr(F.FeatureCache, 'add_shard', add_then_fail)
    with pytest.raises(KeyboardInterrupt):
        cached_features(path, cfg, ckpt, datasets, batch_size=8, shard_size=16,
                        progress=False, log=lambda m: None)
    (folder, ) = _cache_folders(path)
    manifest = json.load(open(os.path.join(folder, F.MANIFEST)))
    assert manifest['complete'] is False and manifest['splits']['test']['done'] == 32
    monkeypatch.setattr(F.FeatureCache, 'add_shard', real_add)
    lines = []
    data = cached_features(path, cfg, ckpt, datasets, batch_size=8, shard_size=16,
                           progress=False, log=lines.append)
    assert '(resuming: 32 already cached)' in lines[0]
    for k in ('feats', 'logits', 'labels'):
        assert torch.equal(data['test'][k], full['test'][k]), k


def test_checkpoint_and_classes_must_fit(stage1, tmp_path):
    from mmpretrain.registry import MODELS
    cfg, ckpt, _ = stage1
    cfg12 = copy.deepcopy(cfg)
    cfg12.model.head.num_classes = 12
    ckpt12 = str(tmp_path / 'twelve.pth')
    torch.save(dict(state_dict=MODELS.build(cfg12.model).state_dict()), ckpt12)
    with pytest.raises(ValueError, match=r'head.fc.weight: checkpoint \(12, 16\) vs model '
                                         r'\(10, 16\)'):
        cached_features(str(tmp_path / 'a'), cfg, ckpt12, _datasets(cfg), log=lambda m: None)
    assert not os.path.exists(tmp_path / 'a') or not _cache_folders(str(tmp_path / 'a'))
    with pytest.raises(ValueError, match='the test data set has 10 classes .* num_classes=12'):
        cached_features(str(tmp_path / 'b'), cfg12, ckpt12, _datasets(cfg), log=lambda m: None)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        cached_features(str(tmp_path / 'c'), cfg, str(tmp_path / 'none.pth'), _datasets(cfg))
