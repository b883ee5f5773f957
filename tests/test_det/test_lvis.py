"""LVIS statistics for GRW, ClassCountsHook's 'lvis' source and checks, and mmdet's
LVISMetric end to end on the fixture (with the lvis/numpy fix)."""
import json
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.registry import HOOKS, METRICS, MODELS

import disalign_mm.det  # noqa: F401
from disalign_mm.det import apply_lvis_numpy_compat, lvis_class_counts, lvis_frequency_groups
from disalign_mm.engine import ClassCountsHook
from disalign_mm.engine.class_stats import ClassCounts
from tests.test_det.fixtures import CLASSES, IMAGE_COUNT, INSTANCE_COUNT, OBJECTS, H, W


def write_json(path, data):
    with open(path, 'w') as f:
        json.dump(data, f)
    return str(path)


def test_counts_from_lvis_annotation(lvis_data):
    cc = lvis_class_counts(lvis_data['ann_file'])
    assert cc.counts == IMAGE_COUNT and cc.unit == 'images'
    assert cc.classes == list(CLASSES)
    assert cc.extra['frequency'] == ['f', 'f', 'c', 'r', 'c']
    cc = lvis_class_counts(lvis_data['ann_file'], count='instance_count')
    assert cc.counts == INSTANCE_COUNT and cc.unit == 'instances'
    assert lvis_frequency_groups(lvis_data['ann_file']) == {'r': [3], 'c': [2, 4], 'f': [0, 1]}


def test_category_order_is_mmdet_label_order(lvis_data, tmp_path):
    """Counts follow the order of ``categories`` in the file, which is how
    mmdet's LVIS data sets assign labels, whatever the ids."""
    from mmdet.datasets import LVISV1Dataset
    with open(lvis_data['ann_file']) as f:
        data = json.load(f)
    data['categories'] = data['categories'][::-1]
    ann = write_json(tmp_path / 'rev.json', data)
    ds = LVISV1Dataset(data_root=lvis_data['root'], ann_file=ann, data_prefix=dict(img=''),
                       pipeline=[], lazy_init=False)
    cc = lvis_class_counts(ann)
    assert cc.counts == IMAGE_COUNT[::-1]
    cat_of_label = {ds.cat2label[c['id']]: c for c in data['categories']}
    assert [cat_of_label[i]['image_count'] for i in range(5)] == cc.counts


def test_missing_frequency_data_is_clear(lvis_data, tmp_path):
    with open(lvis_data['ann_file']) as f:
        data = json.load(f)
    for c in data['categories'][2:]:
        del c['image_count']
        del c['frequency']
    ann = write_json(tmp_path / 'nocounts.json', data)
    with pytest.raises(ValueError, match=r"3 of 5 categories have no 'image_count'"):
        lvis_class_counts(ann)
    # instance_count is still there: selectable
    assert lvis_class_counts(ann, 'instance_count').counts == INSTANCE_COUNT
    with pytest.raises(ValueError, match="no valid 'frequency'"):
        lvis_frequency_groups(ann)
    with pytest.raises(ValueError, match='count must be one of'):
        lvis_class_counts(ann, 'images')
    with pytest.raises(ValueError, match='has no "categories"'):
        lvis_class_counts(write_json(tmp_path / 'x.json', {'images': []}))


def _fake_runner(model, ann_file=None, work_dir='.'):
    """What ClassCountsHook reads of a Runner in a training run."""
    ds = SimpleNamespace(ann_file=ann_file)
    return SimpleNamespace(model=model, work_dir=str(work_dir), rank=0, cfg={}, val_loop=None,
                           train_dataloader=SimpleNamespace(dataset=SimpleNamespace(dataset=ds)),
                           logger=SimpleNamespace(info=lambda *a, **k: None))


def _head(num_classes=5, background_weight=1.0, counts=None):
    return MODELS.build(dict(
        type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=8, roi_feat_size=3,
        num_classes=num_classes, cls_predictor_cfg=dict(type='DisAlignLinear'),
        loss_cls=dict(type='GRWCrossEntropyLoss', rho=0.8, background_weight=background_weight,
                      class_counts=counts)))


def _lvis_hook(**kw):
    return HOOKS.build(dict(type='ClassCountsHook', source=dict(type='lvis', **kw)))


def test_hook_sets_counts_from_training_annotation(lvis_data):
    head = _head()
    _lvis_hook().before_train(_fake_runner(torch.nn.ModuleDict(dict(h=head)),
                                           lvis_data['ann_file']))
    assert head.loss_cls.class_counts.tolist() == IMAGE_COUNT
    torch.testing.assert_close(
        head.loss_cls.class_weight,
        torch.tensor([0.14599, 0.17452, 0.42029, 3.33808, 0.92113, 1.0]), atol=1e-5, rtol=0)
    head = _head()
    _lvis_hook(count='instance_count', ann_file=lvis_data['ann_file']).before_train(
        _fake_runner(torch.nn.ModuleDict(dict(h=head))))
    assert head.loss_cls.class_counts.tolist() == INSTANCE_COUNT


def test_hook_counts_file(lvis_data, tmp_path):
    path = str(tmp_path / 'counts.json')
    ClassCounts([5, 4, 3, 2, 1], classes=list(CLASSES), source='test').dump(path)
    head = _head()
    ClassCountsHook(class_counts_file=path).before_train(
        _fake_runner(torch.nn.ModuleDict(dict(h=head))))
    assert head.loss_cls.class_counts.tolist() == [5, 4, 3, 2, 1]


def test_hook_bad_inputs(lvis_data):
    ann = lvis_data['ann_file']
    # 5 LVIS categories, 4 classes in the head
    with pytest.raises(ValueError, match='5 entries but the model h has 4 classes'):
        _lvis_hook(ann_file=ann).before_train(
            _fake_runner(torch.nn.ModuleDict(dict(h=_head(num_classes=4)))))
    with pytest.raises(ValueError, match='set background_weight=1.0'):
        _lvis_hook(ann_file=ann).before_train(
            _fake_runner(torch.nn.ModuleDict(dict(h=_head(background_weight=None)))))
    # counts in the loss config as well: they must be the same, else an error
    # naming both sides (the same rule in every host)
    with pytest.raises(ValueError, match=r'h.loss_cls \(from the config \(class_counts\)\) '
                       r"and the source 'lvis' of ClassCountsHook .* different class counts"):
        _lvis_hook(ann_file=ann).before_train(
            _fake_runner(torch.nn.ModuleDict(dict(h=_head(counts=[1] * 5)))))
    head = _head(counts=IMAGE_COUNT)
    _lvis_hook(ann_file=ann).before_train(_fake_runner(torch.nn.ModuleDict(dict(h=head))))
    with pytest.raises(RuntimeError, match='nothing in this run takes class counts'):
        _lvis_hook(ann_file=ann).before_train(_fake_runner(torch.nn.Linear(2, 2)))
    with pytest.raises(ValueError, match='not both'):
        ClassCountsHook(source='lvis', class_counts_file=ann)
    with pytest.raises(ValueError, match='count must be one of'):
        _lvis_hook(count='frequency').before_train(
            _fake_runner(torch.nn.ModuleDict(dict(h=_head())), ann))
    with pytest.raises(ValueError, match="cannot tell the one LVIS annotation file"):
        _lvis_hook().before_train(_fake_runner(torch.nn.ModuleDict(dict(h=_head()))))


# ------------------------------------------------------------------ LVISMetric

def _predictions(drop_cat=None):
    """Perfect predictions (the ground truth, score 1), as mmdet's
    DetDataSample dicts, optionally missing one category."""
    samples = []
    for i, objs in enumerate(OBJECTS):
        objs = [o for o in objs if o[0] != drop_cat]
        boxes = torch.tensor([[x, y, x + w, y + h] for _, x, y, w, h in objs], dtype=torch.float32)
        masks = torch.zeros(len(objs), H, W, dtype=torch.bool)
        for j, (_, x, y, w, h) in enumerate(objs):
            masks[j, y:y + h, x:x + w] = True
        samples.append(dict(
            img_id=i + 1, ori_shape=(H, W),
            pred_instances=dict(bboxes=boxes.reshape(-1, 4), scores=torch.ones(len(objs)),
                                labels=torch.tensor([c - 1 for c, *_ in objs], dtype=torch.long),
                                masks=masks)))
    return samples


def _evaluate(ann_file, samples):
    metric = METRICS.build(dict(type='LVISMetric', ann_file=ann_file, metric=['bbox', 'segm']))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.evaluate(size=len(samples))


def test_lvis_metric_rare_common_frequent(lvis_data):
    res = _evaluate(lvis_data['ann_file'], _predictions())
    for iou in ('bbox', 'segm'):
        for k in ('AP', 'AP50', 'APr', 'APc', 'APf'):
            assert res[f'lvis/{iou}_{k}'] == pytest.approx(1.0), (iou, k, res)
    # no prediction for the rare category (durian, id 4): APr drops to 0,
    # APc / APf stay perfect and AP is the mean over the 5 categories
    res = _evaluate(lvis_data['ann_file'], _predictions(drop_cat=4))
    for iou in ('bbox', 'segm'):
        assert res[f'lvis/{iou}_APr'] == 0.0
        assert res[f'lvis/{iou}_APc'] == pytest.approx(1.0)
        assert res[f'lvis/{iou}_APf'] == pytest.approx(1.0)
        assert res[f'lvis/{iou}_AP'] == pytest.approx(0.8)


def test_lvis_numpy_fix_is_needed_and_scoped(lvis_data, monkeypatch):
    import lvis.eval as lvis_eval
    assert not hasattr(np, 'float'), 'this numpy still has np.float: nothing to fix'
    assert apply_lvis_numpy_compat() is True
    assert lvis_eval.np is not np and lvis_eval.np.float is float
    assert lvis_eval.np.cumsum is np.cumsum  # everything else is numpy's
    assert not hasattr(np, 'float')  # numpy itself is untouched
    # without the fix, mmdet's LVISMetric crashes at evaluation time
    monkeypatch.setattr(lvis_eval, 'np', np)
    with pytest.raises(AttributeError, match="has no attribute 'float'"):
        _evaluate(lvis_data['ann_file'], _predictions())
    assert apply_lvis_numpy_compat() is True  # re-applies, idempotent
    assert _evaluate(lvis_data['ann_file'], _predictions())['lvis/bbox_APr'] == pytest.approx(1.0)


def _imperfect_predictions():
    """The ground truth shifted, rescored and partly mislabelled: APs strictly
    between 0 and 1, so that two evaluations can disagree."""
    g = torch.Generator().manual_seed(0)
    samples = _predictions()
    for s in samples:
        p = s['pred_instances']
        n = len(p['scores'])
        p['bboxes'] = p['bboxes'] + torch.randint(-2, 3, p['bboxes'].shape, generator=g).float()
        p['scores'] = torch.rand(n, generator=g)
        flip = torch.rand(n, generator=g) < 0.3
        p['labels'] = torch.where(flip, (p['labels'] + 1) % len(CLASSES), p['labels'])
    return samples


def test_lvis_numpy_fix_agrees_with_lvis_on_an_old_numpy(lvis_data, monkeypatch):
    """Where lvis works unpatched (numpy < 1.24, whose np.float is the builtin
    float), the scoped fix gives the same numbers."""
    import lvis.eval as lvis_eval
    samples = _imperfect_predictions()
    assert apply_lvis_numpy_compat() is True
    patched = _evaluate(lvis_data['ann_file'], samples)
    assert any(0 < v < 1 for v in patched.values()), patched
    # lvis as it runs on numpy < 1.24: plain numpy, which has the aliases
    from disalign_mm.det.lvis_compat import _REMOVED_ALIASES, missing_aliases
    for name in missing_aliases():
        monkeypatch.setattr(np, name, _REMOVED_ALIASES[name], raising=False)
    monkeypatch.setattr(lvis_eval, 'np', np)
    assert _evaluate(lvis_data['ann_file'], _imperfect_predictions()) == patched


@pytest.mark.parametrize('version', ['v1', 'v0.5'])
def test_stage2_config_reads_fixture(version, lvis_data):
    """Both LVIS layouts (v0.5: file_name under train2017/, v1: coco_url)
    load the fixture through the shipped stage-2 configs, whose training set
    is the plain LVIS set (no repeat factors: GRW re-balances), and the
    counts hook finds its annotation file."""
    from mmdet.registry import DATASETS

    from tests.test_det.fixtures import load_config, tiny_options
    name = f'disalign_mask-rcnn_r50_fpn_ms-9k_lvis-{version}.py'
    cfg = load_config(version, name, tiny_options(lvis_data, version, repeat_factor=False))
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    assert type(ds).__name__ == {'v1': 'LVISV1Dataset', 'v0.5': 'LVISV05Dataset'}[version]
    assert len(ds) == 4
    for i in range(4):
        info = ds.get_data_info(i)
        assert osp.isfile(info['img_path']), info['img_path']
    head = _head()
    runner = _fake_runner(torch.nn.ModuleDict(dict(h=head)))
    runner.train_dataloader = SimpleNamespace(dataset=ds)
    HOOKS.build(cfg.custom_hooks[1]).before_train(runner)
    assert head.loss_cls.class_counts.tolist() == IMAGE_COUNT
