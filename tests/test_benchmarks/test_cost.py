"""disalign_mm.benchmarks.cost: the timed stage 2 is a stage-2 step (frozen
weights and BatchNorm statistics unchanged, frozen modules in eval mode
while it runs, only the calibration moves), the timed stage 1 a stage-1
step, and the trainable count is the calibration's."""
import dataclasses

import pytest
import torch

from disalign_mm.benchmarks.cost import (CostSettings, build_models, host_options, prepare_host,
                                         time_jobs)
from disalign_mm.core import DisAlignCalibration
from disalign_mm.engine import calibration_param_names, select_trainable

# host -> settings of a shrunk model with 5 classes
SHRUNK = {
    'cls': CostSettings(img_size=16, batch_size=4, num_classes=5),
    'seg': CostSettings(img_size=32, batch_size=2, num_classes=5, depth=18),
    'det': CostSettings(img_size=64, batch_size=1, num_classes=5, depth=18, cfg_options={
        'model.train_cfg.rpn_proposal.nms_pre': 200,
        'model.train_cfg.rpn_proposal.max_per_img': 64, 'model.train_cfg.rcnn.sampler.num': 32,
        'model.test_cfg.rpn.nms_pre': 200, 'model.test_cfg.rpn.max_per_img': 64}),
}


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize('host', ['cls', pytest.param('seg', marks=pytest.mark.slow),
                                  pytest.param('det', marks=pytest.mark.slow)])
def test_timed_stage2_is_a_stage2_step(host):
    # lr large enough that every calibration value visibly moves
    bench = prepare_host(host, dataclasses.replace(SHRUNK[host], lr=1e-2))
    model1, model2 = bench.model1, bench.model2
    calib = set(calibration_param_names(model2))
    before1, before2 = _state(model1), _state(model2)
    buffers = [k for k, _ in model2.named_buffers() if k in before2]
    if host != 'det':  # mmdet's ResNet keeps its BatchNorm in eval (norm_eval) anyway
        assert any(k.endswith('running_mean') for k in buffers)

    # which modules run in train mode while the timed stage-2 step runs
    modes, recording = {}, [False]
    calib_mods = {n for n, m in model2.named_modules() if isinstance(m, DisAlignCalibration)}

    def record(name):
        def hook(module, args):
            if recording[0]:
                modes.setdefault(name, set()).add(module.training)
        return hook

    handles = [m.register_forward_pre_hook(record(n)) for n, m in model2.named_modules() if n]
    jobs = dict(bench.jobs)

    def stage2():
        recording[0] = True
        try:
            bench.jobs['stage2']()
        finally:
            recording[0] = False

    jobs['stage2'] = stage2
    times = time_jobs(jobs, warmup=1, repeats=2)
    for h in handles:
        h.remove()
    assert {k: len(v) for k, v in times.items()} == dict(stage1=2, stage2=2, infer=2)

    after2 = _state(model2)
    moved = {k for k in before2 if not torch.equal(before2[k], after2[k])}
    assert moved == calib, f'moved: {sorted(moved - calib)[:5]}, still: {sorted(calib - moved)}'
    # in train mode: the calibration, its parts and the modules holding it; every
    # other module that ran was in eval mode
    trains = {n for n, m in modes.items() if True in m}
    assert calib_mods <= trains
    related = {n for n in modes for c in calib_mods
               if n == c or c.startswith(n + '.') or n.startswith(c + '.')}
    assert trains <= related, sorted(trains - related)
    assert all(modes[n] == {False} for n in set(modes) - related)
    # the timed stage 1 is a stage-1 step: its backbone trains
    after1 = _state(model1)
    changed1 = [k for k in before1 if not torch.equal(before1[k], after1[k])]
    assert any(k.startswith('backbone.') for k in changed1)
    if host != 'det':
        assert any(k.endswith('running_mean') for k in changed1)


def test_freeze_is_the_hooks():
    """Stage 2 trains exactly the hook's choice; frozen modules are in eval
    after the stage-2 job put the model in train mode, the calibration in
    train mode; stage 2 starts from the stage-1 weights."""
    bench = prepare_host('cls', SHRUNK['cls'])
    model1, model2 = bench.model1, bench.model2
    bench.jobs['stage2']()
    trainable = {n for n, p in model2.named_parameters() if p.requires_grad}
    assert trainable == set(calibration_param_names(model2)) == set(select_trainable(model2))
    assert trainable == set(bench.frozen.trainable)
    assert not model2.backbone.training and not model2.neck.training
    calib = [m for m in model2.modules() if isinstance(m, DisAlignCalibration)]
    assert len(calib) == 1 and calib[0].training
    assert all(p.requires_grad for p in model1.parameters())
    _, fresh1, _, fresh2 = build_models('cls', 5, (16, 16))
    s1 = fresh1.state_dict()
    assert all(torch.equal(v, s1[k]) for k, v in fresh2.state_dict().items() if k in s1)


@pytest.mark.slow
def test_det_fg_classes_must_leave_a_class_out():
    with pytest.raises(ValueError, match='det_fg_classes=5 must be in'):
        build_models('det', 5, (64, 64), 18, None, det_bg_logit=10.0, det_fg_classes=5)


def test_bad_host_is_refused():
    with pytest.raises(ValueError, match='unknown host'):
        host_options('foo', 5, (8, 8), None)
