"""tools/benchmark/stage2_cost.py on shrunk models (CPU, a few seconds each).

Only the bookkeeping is asserted (timings measured and positive, ratios,
trainable counts, the freezing); the speed target is measured and printed by
the tool itself, never asserted by a timed unit test."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from disalign_mm.engine import calibration_param_names, select_trainable

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO, 'tools', 'benchmark', 'stage2_cost.py')

spec = importlib.util.spec_from_file_location('stage2_cost', TOOL)
sc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sc)

# host -> shrinking arguments, and the calibration values expected with
# 5 classes: alpha (5) + beta (5) + confidence weight (feature channels) + bias (1)
CASES = {
    'cls': (['--img-size', '16', '--batch-size', '4'], 5 + 5 + 64 + 1),
    'seg': (['--img-size', '32', '--batch-size', '2', '--depth', '18'], 5 + 5 + 512 + 1),
    'det': (['--img-size', '64', '--batch-size', '1', '--depth', '18', '--cfg-options',
             'model.train_cfg.rpn_proposal.nms_pre=200',
             'model.train_cfg.rpn_proposal.max_per_img=64',
             'model.train_cfg.rcnn.sampler.num=32', 'model.test_cfg.rpn.nms_pre=200',
             'model.test_cfg.rpn.max_per_img=64'], 5 + 5 + 1024 + 1),
}


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize('host', sorted(CASES))
def test_tool_reports_timings_ratios_and_trainable_count(host, tmp_path, capsys):
    extra, n_calib = CASES[host]
    out = tmp_path / 'cost.json'
    argv = ['--hosts', host, '--num-classes', '5', '--repeats', '2', '--warmup', '1',
            '--threads', '1', '--json', str(out)] + extra
    sc.main(argv)
    printed = capsys.readouterr().out
    (r, ) = json.loads(out.read_text())['results']
    assert r['host'] == host and r['num_classes'] == 5 and r['repeats'] == 2
    for k in ('stage1_ms', 'stage2_ms', 'infer_ms'):
        assert r[k] > 0 and len(r['times_ms'][k[:-3]]) == 2
        assert r[k] == pytest.approx(sorted(r['times_ms'][k[:-3]])[0] / 2
                                     + sorted(r['times_ms'][k[:-3]])[1] / 2)
    assert r['stage2_over_infer'] == pytest.approx(r['stage2_ms'] / r['infer_ms'])
    assert r['stage2_over_stage1'] == pytest.approx(r['stage2_ms'] / r['stage1_ms'])
    assert r['meets_target'] == (r['stage2_over_infer'] <= 1.3)
    if host == 'det':  # scored like a trained detector: it keeps detections
        assert r['det_fg_classes'] == 3 and r['detections_per_image'] > 0

    # the trainable count is that of the calibration of the stage-2 model
    args = sc.parse_args(argv)
    size = (args.img_size, args.img_size)
    *_, model2 = sc.build_models(host, 5, size, args.depth, args.cfg_options)
    params = dict(model2.named_parameters())
    names = calibration_param_names(model2)
    assert r['trainable_params'] == sum(params[n].numel() for n in names) == n_calib
    assert r['trainable_tensors'] == len(names) == 4
    assert r['total_params'] == sum(p.numel() for p in params.values())
    assert f'| {host} ' in printed and 's2/infer' in printed


def test_freeze_is_the_hooks():
    """Stage 2 trains exactly the hook's choice; frozen modules are in eval
    after the hook's per-iteration call, the calibration in train mode."""
    _, model1, _, model2 = sc.build_models('cls', 5, (16, 16))
    hook, runner = sc.freeze_stage2(model2)
    model2.train()
    hook.before_train_iter(runner, 0)
    trainable = {n for n, p in model2.named_parameters() if p.requires_grad}
    assert trainable == set(calibration_param_names(model2)) == set(select_trainable(model2))
    assert not model2.backbone.training and not model2.neck.training
    assert model2.head.fc.calibration.training
    # stage 2 starts from the stage-1 weights
    s1 = model1.state_dict()
    assert all(torch.equal(v, s1[k]) for k, v in model2.state_dict().items() if k in s1)
    assert all(p.requires_grad for p in model1.parameters())


def test_det_fg_classes_must_leave_a_class_out():
    with pytest.raises(ValueError, match='det_fg_classes=5 must be in'):
        sc.build_models('det', 5, (64, 64), 18, None, det_bg_logit=10.0, det_fg_classes=5)


def test_bad_host_is_refused():
    with pytest.raises(SystemExit):
        sc.parse_args(['--hosts', 'foo'])
    with pytest.raises(ValueError, match='unknown host'):
        sc.host_options('foo', 5, (8, 8), None)
