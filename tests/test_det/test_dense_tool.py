"""The peers on LVIS end to end, on the tiny LVIS-format fixture with the
shipped configs shrunk: NorCal's gamma chosen by
``tools/select_dense_second_stage.py`` from its cache equals ``mim test`` of
the config it writes (AP to 1e-3), and the shipped NorCal config equals the
cache at its gamma; the cache is resumed, reused, and rebuilt for another
checkpoint, grid or model config; cRT trains only the re-initialised classifier and is a row of the
table; the COCO-format path with a class-aware split held out of the
training set; the bad inputs stop with one-line errors."""
import json
import os
import os.path as osp
import re
import subprocess
import sys
import uuid

import pytest
import torch

import disalign_mm.det  # noqa: F401
from disalign_mm.second_stage.dense import DenseSettings, select_dense_second_stage
from tests.test_det.fixtures import (CLASSES, IMAGE_COUNT, REPO, config_path, load_config,
                                     tiny_options, to_cli, write_lvis_fixture)

pytestmark = pytest.mark.slow  # Runner / mim runs

V = 'v1'
STAGE1 = 'mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
NORCAL = 'norcal_mask-rcnn_r50_fpn_lvis-v1.py'
CRT = 'crt_mask-rcnn_r50_fpn_cas_ms-9k_lvis-v1.py'
METRIC_KEYS = ('bbox_AP', 'segm_AP', 'segm_APr', 'segm_APc', 'segm_APf')


@pytest.fixture(scope='module')
def roots(tmp_path_factory):
    """Three copies of the fixture: training, validation and test images are
    different files (the tool compares images by their files)."""
    return {k: write_lvis_fixture(str(tmp_path_factory.mktemp(f'lvis_{k}')))
            for k in ('train', 'val', 'test')}


def _run(cfg, work_dir, train=True):
    from mmengine.runner import Runner
    tag = uuid.uuid4().hex[:8]
    cfg.work_dir, cfg.experiment_name, cfg.log_level = str(work_dir), f'dt_{tag}', 'WARNING'
    cfg.visualizer.name = f'vis_{tag}'
    runner = Runner.from_cfg(cfg)
    return runner, (runner.train() if train else runner.test())


@pytest.fixture(scope='module')
def stage1(roots, tmp_path_factory):
    """Stage 1, shrunk: 6 epochs of the 4 training images (12 iterations:
    enough for AP above 0 on the fixture)."""
    opts = tiny_options(roots['train'], V)
    opts.update({'train_cfg.max_epochs': 6, 'train_cfg.val_interval': 100})
    work = tmp_path_factory.mktemp('stage1')
    _run(load_config(V, STAGE1, opts), work)
    return str(work / 'epoch_6.pth')


def options(roots, test_cfg=True):
    """The tiny stage-1 options with the validation and the test set each on
    their own images; every detection above 1e-3 kept."""
    opts = tiny_options(roots['train'], V)
    for k in list(opts):
        if k.startswith('val_'):
            t = k.replace('val_', 'test_', 1)
            opts[t] = opts[k]
            if k.endswith('data_root'):
                opts[k], opts[t] = roots['val']['root'], roots['test']['root']
            elif k == 'val_evaluator.ann_file':
                opts[k], opts[t] = roots['val']['ann_file'], roots['test']['ann_file']
    if test_cfg:
        opts['model.test_cfg.rcnn.score_thr'] = 0.001
    return opts


def mim_test(config, checkpoint, work_dir):
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([mim, 'test', 'mmdet', config, '--checkpoint', checkpoint,
                           '--work-dir', str(work_dir)], env=env, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    line = [ln for ln in out.splitlines() if 'lvis/segm_AP:' in ln or 'coco/segm_mAP:' in ln]
    assert line, out[-4000:]
    return {k.split('/')[-1].replace('_mAP', '_AP'): float(v)
            for k, v in re.findall(r'((?:lvis|coco)/\w+): (-?[\d.]+)', line[-1])}


@pytest.fixture(scope='module')
def crt(roots, stage1, tmp_path_factory):
    """cRT over the stage-1 checkpoint, 2 iterations; its resolved config
    (the one the checkpoint was trained with) and checkpoint."""
    opts = tiny_options(roots['train'], V, repeat_factor=False)
    opts.update({'load_from': stage1, 'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
                 'default_hooks.checkpoint.interval': 2, 'param_scheduler.0.start_factor': 1.0})
    work = tmp_path_factory.mktemp('crt')
    cfg = load_config(V, CRT, opts)
    runner, _ = _run(cfg, work)
    path = str(work / 'crt_config.py')
    cfg.dump(path)
    return dict(runner=runner, config=path, checkpoint=str(work / 'iter_2.pth'))


def test_crt_trains_the_reinitialised_classifier_only(stage1, crt):
    from mmdet.datasets.samplers import ClassAwareSampler
    s1 = torch.load(stage1, map_location='cpu', weights_only=False)['state_dict']
    s2 = torch.load(crt['checkpoint'], map_location='cpu', weights_only=False)['state_dict']
    assert set(s1) == set(s2)
    changed = sorted(k for k in s1 if not torch.equal(s1[k], s2[k]))
    assert changed == ['roi_head.bbox_head.fc_cls.bias', 'roi_head.bbox_head.fc_cls.weight']
    # re-initialised (PyTorch's Linear init), not the stage-1 classifier
    # nudged: far from it after 2 small steps
    assert (s1['roi_head.bbox_head.fc_cls.weight'] - s2['roi_head.bbox_head.fc_cls.weight']
            ).abs().max() > 0.05
    model = crt['runner'].model
    assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == [
        'roi_head.bbox_head.fc_cls.bias', 'roi_head.bbox_head.fc_cls.weight']
    assert isinstance(crt['runner'].train_dataloader.batch_sampler.sampler, ClassAwareSampler)


def test_norcal_chosen_from_the_cache_is_mim_test_of_the_written_config(
        roots, stage1, crt, tmp_path):
    work = tmp_path / 'tool'
    result = select_dense_second_stage(
        config_path(V, STAGE1), stage1, str(work),
        DenseSettings(grid=[0.5, 1.0], check_images=3,
                      compare={'cRT': (crt['config'], crt['checkpoint'])}),
        options=options(roots))
    meta = result['meta']
    assert meta['counts'] == IMAGE_COUNT and meta['classes'] == list(CLASSES)
    assert meta['grid'] == [0.0, 0.5, 1.0] and not meta['val_seen_by_stage1']
    # the self-check ran the host's test loop on 3 of the 4 test images
    check = result['self_check']
    assert check['images'] == 3 and check['host']['segm_AP'] == check['cached']['segm_AP']
    rows = {r['key']: r for r in result['rows']}
    assert set(rows) == {'stage1', 'norcal', 'crt'}
    assert result['chosen'] > 0  # NorCal changes the detections of this fixture
    assert rows['norcal']['test'] != rows['stage1']['test']
    for key in METRIC_KEYS + ('bbox_APr', 'bbox_APc', 'bbox_APf'):
        assert key in rows['crt']['test'], rows['crt']['test']
    written = result['written']
    text = open(written).read()
    assert f"'gamma': {result['chosen']}" in text and 'class_counts_file' in text
    got = mim_test(written, stage1, tmp_path / 'mim')
    for key in METRIC_KEYS:
        assert got[key] == pytest.approx(rows['norcal']['test'][key], abs=1e-3), key


def test_the_shipped_norcal_config_is_the_cache_at_its_gamma(roots, stage1, tmp_path):
    """mim test's computation (the Runner's test loop) of
    norcal_mask-rcnn_r50_fpn_lvis-v1.py (gamma 1, LVIS image_count of the
    training annotations) equals the tool's cached scoring at gamma 1."""
    from mmengine.registry import init_default_scope

    from disalign_mm.second_stage.dense import select as dense
    from disalign_mm.second_stage.dense.cache import load_model
    from disalign_mm.second_stage.dense.detection import DetectionHost
    opts = dict(options(roots), load_from=stage1)
    _, host_metrics = _run(load_config(V, NORCAL, opts), tmp_path / 'norcal', train=False)
    host_metrics = dense._short(host_metrics)
    cfg = load_config(V, STAGE1, options(roots))
    init_default_scope('mmdet')
    host = DetectionHost(5, IMAGE_COUNT, [0.0, 1.0])
    model = load_model(cfg, stage1, str(tmp_path / 'r'), 'stage 1', 'cpu', check=host.check_model)
    ds = cfg.test_dataloader.dataset.to_dict()
    prepared = dense.prepare_datasets(cfg, {'test': ds})
    data = dense.cached_outputs(host, str(tmp_path / 'cache'), cfg, stage1, {'test': ds},
                                prepared, model=model, progress=False)
    metric = dense.long_tail_metric(cfg.test_evaluator, None)
    ev = dense.build_evaluator(dict(metric, class_counts=IMAGE_COUNT), prepared['datasets'][
        'test'].metainfo, 'mmdet')
    cached = dense.score(host, model, data['test'], 1.0, ev)
    for key in METRIC_KEYS:
        assert cached[key] == pytest.approx(float(host_metrics[key]), abs=1e-3), key
    # and gamma changes the result (the comparison is not of two stage-1 runs)
    assert dense.score(host, model, data['test'], 0.0, ev) != cached


def test_the_cache_is_rebuilt_for_another_checkpoint_and_resumed(roots, stage1, tmp_path):
    from mmengine.registry import init_default_scope

    from disalign_mm.second_stage.dense import select as dense
    from disalign_mm.second_stage.dense.detection import DetectionHost
    cfg = load_config(V, STAGE1, options(roots))
    init_default_scope('mmdet')
    ds = {'test': cfg.test_dataloader.dataset.to_dict()}
    prepared = dense.prepare_datasets(cfg, ds)

    class Interrupted(DetectionHost):
        calls = 0

        def extract(self, model, batch):
            Interrupted.calls += 1
            if Interrupted.calls == 3:
                raise KeyboardInterrupt
            return super().extract(model, batch)

    logs = []
    cache = str(tmp_path / 'cache')
    with pytest.raises(KeyboardInterrupt):
        dense.cached_outputs(Interrupted(5, IMAGE_COUNT, [0.0, 1.0]), cache, cfg, stage1, ds,
                             prepared, shard_size=1, progress=False, log=logs.append)
    data = dense.cached_outputs(DetectionHost(5, IMAGE_COUNT, [0.0, 1.0]), cache, cfg, stage1,
                                ds, prepared, shard_size=1, progress=False, log=logs.append)
    assert any('resuming: 2 already cached' in ln for ln in logs), logs
    assert len(data['test']) == 4
    # the same key again: read back, not computed
    logs.clear()
    again = dense.cached_outputs(DetectionHost(5, IMAGE_COUNT, [0.0, 1.0]), cache, cfg, stage1,
                                 ds, prepared, progress=False, log=logs.append)
    assert logs == [f'reusing the stage-1 outputs in {data["meta"]["cache"]}']
    assert all(torch.equal(a['scores'], b['scores']) for a, b in zip(again['test'], data['test']))
    # another checkpoint (one weight changed): noticed, named, rebuilt
    other = str(tmp_path / 'other.pth')
    ck = torch.load(stage1, map_location='cpu', weights_only=False)
    ck['state_dict']['roi_head.bbox_head.fc_cls.bias'] += 1.0
    torch.save(ck, other)
    logs.clear()
    rebuilt = dense.cached_outputs(DetectionHost(5, IMAGE_COUNT, [0.0, 1.0]), cache, cfg, other,
                                   ds, prepared, progress=False, log=logs.append)
    assert any('were made from another checkpoint: computing them again' in ln
               for ln in logs), logs
    assert rebuilt['meta']['cache'] != data['meta']['cache']
    assert not osp.isdir(data['meta']['cache'])  # the old cache is removed
    # another gamma grid: the key says so too
    logs.clear()
    dense.cached_outputs(DetectionHost(5, IMAGE_COUNT, [0.0, 0.5]), cache, cfg, other, ds,
                         prepared, progress=False, log=logs.append)
    assert any('another gamma grid' in ln for ln in logs), logs
    # another model config (the NMS of the RoI head)
    cfg.model.test_cfg.rcnn.nms.iou_threshold = 0.6
    logs.clear()
    dense.cached_outputs(DetectionHost(5, IMAGE_COUNT, [0.0, 0.5]), cache, cfg, other, ds,
                         prepared, progress=False, log=logs.append)
    assert any('were made from another model config' in ln for ln in logs), logs


def coco_copy(lvis_ann: str) -> str:
    """The fixture's annotations as a plain COCO file (``iscrowd``, no LVIS
    fields), beside it."""
    with open(lvis_ann) as f:
        data = json.load(f)
    for a in data['annotations']:
        a['iscrowd'] = 0
    for im in data['images']:
        for k in ('coco_url', 'not_exhaustive_category_ids', 'neg_category_ids'):
            im.pop(k, None)
    data['categories'] = [dict(id=c['id'], name=c['name']) for c in data['categories']]
    path = osp.join(osp.dirname(lvis_ann), 'coco.json')
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


def test_coco_format_data_with_a_class_aware_held_out_split(roots, stage1, tmp_path):
    """The same checkpoint on the fixture read as a COCO-format data set
    (CocoDataset, CocoMetric -> LongTailCocoMetric with APr / APc / APf from
    the training annotations' image counts), gamma chosen on a class-aware
    split of the training set."""
    opts = options(roots)
    for split, key in (('train', 'train_dataloader.dataset.dataset'),
                       ('val', 'val_dataloader.dataset'), ('test', 'test_dataloader.dataset')):
        opts[f'{key}.type'] = 'CocoDataset'
        opts[f'{key}.data_prefix.img'] = 'train2017/'  # COCO: file_name under the prefix
        opts[f'{key}.ann_file'] = coco_copy(roots[split]['ann_file'])
        if split != 'train':
            opts[f'{split}_evaluator.type'] = 'CocoMetric'
            opts[f'{split}_evaluator.metric'] = ['bbox', 'segm']
            opts[f'{split}_evaluator.ann_file'] = opts[f'{key}.ann_file']
            # groups for 1 / 2 / 3 training images: rare, common, frequent
            opts[f'{split}_evaluator.rare_thr'] = 1
            opts[f'{split}_evaluator.frequent_thr'] = 2
    result = select_dense_second_stage(
        config_path(V, STAGE1), stage1, str(tmp_path / 'tool'),
        DenseSettings(val_set='held-out', val_per_class=2, grid=[1.0], check_images=0),
        options=opts)
    meta = result['meta']
    assert meta['val_seen_by_stage1'] and 'class-aware split' in meta['val_description']
    assert osp.isfile(meta['split']['file'])
    # images per class counted from the training annotations (4 images)
    assert meta['counts'] == [3.0, 2.0, 2.0, 1.0, 2.0]
    test = result['rows'][1]['test']
    for key in ('bbox_AP', 'bbox_APr', 'bbox_APc', 'bbox_APf', 'segm_AP', 'segm_APr',
                'segm_APc', 'segm_APf'):
        assert key in test, test
    table = open(tmp_path / 'tool' / 'results.md').read()
    assert 'stage 1 was trained on these images' in table


def test_bad_inputs_are_one_line_errors(roots, stage1, tmp_path):
    # a held-out set that is the test set, on the images
    opts = options(roots)
    opts['val_dataloader.dataset.data_root'] = roots['test']['root']
    with pytest.raises(ValueError, match='4 of the 4 held-out images are test images'):
        select_dense_second_stage(config_path(V, STAGE1), stage1, str(tmp_path / 'a'),
                                  DenseSettings(), options=opts)
    # ... and through the command line, one line
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        import select_dense_second_stage as cli
    finally:
        sys.path.pop(0)
    with pytest.raises(SystemExit) as e:
        cli.main([config_path(V, STAGE1), stage1, '--work-dir', str(tmp_path / 'cli'),
                  '--cfg-options'] + to_cli(opts))
    assert str(e.value).startswith('[select_dense_second_stage] error: 4 of the 4 held-out')
    assert '\n' not in str(e.value)
    # counts of another number of classes
    from disalign_mm.engine.class_stats import ClassCounts
    counts = str(tmp_path / 'counts.json')
    ClassCounts([1, 2, 3, 4]).dump(counts)
    with pytest.raises(ValueError, match='have 4 entries but the model has 5 classes'):
        select_dense_second_stage(config_path(V, STAGE1), stage1, str(tmp_path / 'b'),
                                  DenseSettings(class_counts_file=counts), options=options(roots))
    # a checkpoint of another model (7 classes)
    other = load_config(V, STAGE1, tiny_options(roots['train'], V))
    other.model.roi_head.bbox_head.num_classes = 7
    other.model.roi_head.mask_head.num_classes = 7
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=MODELS.build(other.model).state_dict()), path)
    with pytest.raises(ValueError, match='does not fit the model'):
        select_dense_second_stage(config_path(V, STAGE1), path, str(tmp_path / 'c'),
                                  DenseSettings(), options=options(roots))
