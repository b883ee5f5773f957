"""The second-stage tool computes what ``mim test`` computes, on every way
users write a stage-1 config: ``data_preprocessor`` at the top level (as
mmpretrain's data set bases put it), inside ``model``, inherited from
``mmpretrain::_base_/datasets/...``, ``to_rgb`` True and False, a dataset
wrapper around the training set, folds of a ``KFoldDataset``.

For each, on a data set and config written here: the tool's "Stage 1" row
is what ``mim test`` of the stage-1 checkpoint prints, and ``mim test`` of
the exported config and checkpoint prints the exported method's row (to
0.01). One stage-1 checkpoint serves every convention (the data
preprocessor has no weights); the images' channel statistics make a
missing normalisation or swapped channels change the predictions.
"""
import os.path as osp

import pytest
import torch

from disalign_mm.second_stage import Settings, select_second_stage
from disalign_mm.second_stage.check import Stage1Mismatch
from disalign_mm.second_stage.methods import Schedule
from tests.test_tools.folder_data import MEAN, STD, mim_test, stage1_config

pytestmark = pytest.mark.slow  # Runner, mim and subprocess runs


def _settings(**kw) -> Settings:
    base = dict(methods=['disalign', 'logitadj'], schedule=Schedule(epochs=1), quick=True,
                val_per_class=2, many_thr=15, few_thr=6, export='disalign', check_images=0)
    base.update(kw)
    return Settings(**base)


def _run(tmp_path, root, ckpt, convention, **config):
    cfg = tmp_path / f'{convention}.py'
    cfg.write_text(stage1_config(root, convention, **config))
    lines = []
    result = select_second_stage(str(cfg), ckpt, str(tmp_path / 'select'), _settings(),
                                 log=lines.append)
    return str(cfg), result, lines


def _assert_equal_to_mim_test(cfg, ckpt, result, tmp_path, subprocess_run=False):
    stage1 = mim_test(cfg, ckpt, str(tmp_path / 'mim_stage1'), subprocess_run=subprocess_run)
    assert stage1['accuracy/top1'] == pytest.approx(result['stage1']['test']['top1'], abs=0.01)
    exported = result['exported']
    stage2 = mim_test(exported['config'], exported['checkpoint'], str(tmp_path / 'mim_stage2'),
                      subprocess_run=subprocess_run)
    row = result['methods'][exported['method']]['test']['top1']
    assert stage2['accuracy/top1'] == pytest.approx(row, abs=0.01)


@pytest.mark.parametrize('convention', ['top-level', 'top-level-rgb', 'in-model',
                                        'mmpretrain-base'])
def test_data_preprocessor_conventions(shapes, tmp_path, convention):
    root, ckpt = shapes
    cfg, result, lines = _run(tmp_path, root, ckpt, convention)
    assert any(line.startswith('self-check:') for line in lines)
    # the `mim` command itself once; mmpretrain's tools/test.py in this process otherwise
    _assert_equal_to_mim_test(cfg, ckpt, result, tmp_path,
                              subprocess_run=convention == 'top-level')


@pytest.mark.parametrize('wrapper', [
    "dict(type='ClassBalancedDataset', oversample_thr=0.5, dataset={})",
    "dict(type='RepeatDataset', times=2, dataset={})"])
def test_resampling_wrapper_around_the_training_set(shapes, tmp_path, wrapper):
    """Stage 2 reads the plain training set (its counts, not the repeated
    ones) and the export trains on it too."""
    root, ckpt = shapes
    inner = (f"dict(type='CustomDataset', data_root={root!r}, data_prefix='train', "
             'pipeline=train_pipeline)')
    cfg, result, lines = _run(tmp_path, root, ckpt, 'top-level', train=wrapper.format(inner))
    assert result['meta']['train_counts'] == [40, 16, 8, 4]
    assert any('reads the training set without train_dataloader.dataset' in line
               for line in lines)
    from mmengine.config import Config
    exported = Config.fromfile(result['exported']['config'])
    assert exported.train_dataloader.dataset.type == 'CustomDataset'
    _assert_equal_to_mim_test(cfg, ckpt, result, tmp_path)


def test_kfold_keeps_its_folds(shapes, tmp_path):
    """A KFoldDataset keeps its meaning: the training fold for stage 2, the
    held-out fold as the test set (not the whole data set twice)."""
    root, ckpt = shapes
    fold = ("dict(type='KFoldDataset', fold=0, num_splits=5, seed=1, test_mode={mode}, "
            f"dataset=dict(type='CustomDataset', data_root={root!r}, data_prefix='train', "
            'pipeline={pipe}))')
    cfg, result, _ = _run(tmp_path, root, ckpt, 'top-level',
                          train=fold.format(mode=False, pipe='train_pipeline'),
                          test=fold.format(mode=True, pipe='test_pipeline'))
    assert sum(result['meta']['train_counts']) == 55  # 4 of 5 folds of 68 (68 // 5 = 13 out)
    assert result['meta']['test_images'] == 13
    _assert_equal_to_mim_test(cfg, ckpt, result, tmp_path)


def test_unknown_wrapper_is_refused(shapes, tmp_path):
    root, ckpt = shapes
    train = ("dict(type='MyWrapper', dataset=dict(type='CustomDataset', data_root="
             f"{root!r}, data_prefix='train', pipeline=train_pipeline))")
    cfg = tmp_path / 'wrapped.py'
    cfg.write_text(stage1_config(root, 'top-level', train=train))
    with pytest.raises(NotImplementedError, match='train_dataloader.dataset is a MyWrapper'):
        select_second_stage(str(cfg), ckpt, str(tmp_path / 'select'), _settings(),
                            log=lambda m: None)


def test_self_check_fires_on_wrong_features(shapes, tmp_path, monkeypatch):
    """The old defect on purpose: the model built without the config's
    top-level data_preprocessor (no normalisation). The self-check stops
    the run before anything trains, naming both accuracies."""
    from mmpretrain.models.utils import ClsDataPreprocessor

    from disalign_mm.second_stage import features
    root, ckpt = shapes
    real = features.build_model

    def without_normalisation(cfg, work_dir):
        model = real(cfg, work_dir)
        model.data_preprocessor = ClsDataPreprocessor(num_classes=4)
        return model

    monkeypatch.setattr(features, 'build_model', without_normalisation)
    cfg = tmp_path / 'top.py'
    cfg.write_text(stage1_config(root, 'top-level'))
    with pytest.raises(Stage1Mismatch, match=r'`mim test` of the stage-1 checkpoint gives '
                       r'top-1 \d+\.\d+ .* the cached stage-1 outputs \d+\.\d+'):
        select_second_stage(str(cfg), ckpt, str(tmp_path / 'select'), _settings(),
                            log=lambda m: None)
    assert not osp.exists(tmp_path / 'select' / 'results.md')


def test_the_tools_model_is_the_runners(shapes, tmp_path):
    """What the tool runs: the model mmengine's Runner builds (top-level
    data_preprocessor merged), not MODELS.build(cfg.model)."""
    from mmengine.config import Config

    from disalign_mm.engine.build import build_model, data_preprocessor_of
    root, _ = shapes
    cfg_file = tmp_path / 'top.py'
    cfg_file.write_text(stage1_config(root, 'top-level-rgb'))
    model = build_model(Config.fromfile(str(cfg_file)), str(tmp_path / 'runner'))
    pre = data_preprocessor_of(model)
    assert pre['mean'] == pytest.approx(MEAN) and pre['std'] == pytest.approx(STD)
    assert pre['to_rgb'] is True
    assert torch.is_tensor(model.data_preprocessor.mean)
