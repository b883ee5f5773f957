"""Mixed precision on CPU: the calibrated layers of the three hosts, the
heads that carry them, the GRW losses and a stage-2 step under
``torch.autocast('cpu', dtype=torch.bfloat16)`` (what mmengine's
AmpOptimWrapper does on a GPU; tools/gpu_check.py runs the same there, with
float16 too) are finite and close to float32.

The stated tolerance: bfloat16 keeps 8 significant bits (a relative rounding
of 2**-9 ~ 0.2% per value), and a classifier's logit sums C products, so
outputs are compared to float32 relative to their scale:
``|bf16 - fp32| <= TOL * max|fp32|`` with ``TOL = 0.02``; losses within 2%;
gradients within 5% of the largest float32 gradient (sums of many bf16
products); the calibration after a few stage-2 steps within 0.05 of float32 (it starts
at 1 / 0; a step of lr 0.5 moves it by about 0.1)."""
import copy

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from disalign_mm.core import (CalibratedConv2d, CalibratedCosineLinear, CalibratedLinear,
                              DisAlignCalibration)
from disalign_mm.engine import GRWCrossEntropyLoss
from tests.tiny_runner import TinyModel, make_runner

TOL = 0.02  # of the largest float32 value (outputs, losses)
GRAD_TOL = 0.05  # of the calibration's largest float32 gradient (sums of bf16 products)
BF16 = dict(device_type='cpu', dtype=torch.bfloat16)


def _randomize(cal: DisAlignCalibration, seed: int = 1) -> None:
    """A trained-looking calibration, with statistics set (what stage 2 and
    inference run)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        cal.alpha.copy_(torch.rand(cal.alpha.shape, generator=g) * 2 + 0.5)
        cal.beta.copy_(torch.randn(cal.beta.shape, generator=g))
        if cal.confidence_mode == 'input':
            cal.confidence.weight.copy_(torch.randn(cal.confidence.weight.shape, generator=g))
            cal.confidence.bias.fill_(0.3)
    if cal.standardize_features:
        c = cal.in_channels
        cal.set_feature_stats(torch.randn(c, generator=g), torch.rand(c, generator=g) + 0.5, 100)
    if cal.condition_magnitude:
        cal.set_logit_stats(torch.rand(cal.num_classes, generator=g) * 3 + 0.5, 100)


def _assert_close_to_fp32(low, high, what, tol=TOL, scale=None):
    assert low.dtype in (torch.bfloat16, torch.float32), (what, low.dtype)
    low, high = low.detach().float(), high.detach()
    assert torch.isfinite(low).all(), what
    err = float((low - high).abs().max())
    scale = float(high.abs().max()) if scale is None else scale
    assert err <= tol * scale, f'{what}: max error {err:.4g} > {tol} * {scale:.4g}'


def _forward_and_grads(layer, *inputs, autocast):
    """Output and the calibration's parameter gradients (of a fixed
    projection of the output), in float32 or under bf16 autocast."""
    layer.zero_grad()
    with torch.autocast(**BF16, enabled=autocast):
        out = layer(*inputs)
    g = torch.Generator().manual_seed(5)
    (out.float() * torch.randn(out.shape, generator=g)).sum().backward()
    grads = {n: p.grad.clone() for n, p in layer.calibration.named_parameters()}
    return out, grads


LAYERS = {
    # classification (mmpretrain's fc), detection (mmdet's fc_cls, background last)
    'linear': lambda: (CalibratedLinear(64, 10), (torch.randn(16, 64) * 3, )),
    'linear, background last': lambda: (CalibratedLinear(64, 11, background_last=True),
                                        (torch.randn(16, 64) * 3, )),
    'cosine': lambda: (CalibratedCosineLinear(64, 10, background_last=True),
                       (torch.randn(16, 64), )),
    # segmentation (mmseg's conv_seg): one confidence per pixel
    'conv 1x1': lambda: (CalibratedConv2d(32, 7), (torch.randn(2, 32, 8, 8) * 3, )),
    'linear, constant confidence': lambda: (
        CalibratedLinear(64, 10, calibration=dict(confidence='constant')),
        (torch.randn(16, 64), )),
}


@pytest.mark.parametrize('kind', sorted(LAYERS))
def test_calibrated_layers_under_bf16_autocast(kind):
    torch.manual_seed(0)
    layer, inputs = LAYERS[kind]()
    _randomize(layer.calibration)
    high, high_grads = _forward_and_grads(layer, *inputs, autocast=False)
    low, low_grads = _forward_and_grads(layer, *inputs, autocast=True)
    assert high.dtype == torch.float32
    _assert_close_to_fp32(low, high, f'{kind} output')
    # relative to the largest gradient of the calibration: the step SGD takes
    scale = max(float(g.abs().max()) for g in high_grads.values())
    for name, g in high_grads.items():
        _assert_close_to_fp32(low_grads[name], g, f'{kind} d/d {name}', GRAD_TOL, scale)


def test_grw_losses_under_bf16_autocast():
    """Logits as a bf16 head gives them; the loss is computed in float32
    (autocast runs cross entropy in float32) with class and sample weights,
    ignored labels, 'weighted' and 'count' averaging."""
    from disalign_mm.seg import SegGRWCrossEntropyLoss
    torch.manual_seed(0)
    losses = {
        'cls': (GRWCrossEntropyLoss(rho=1.2, class_counts=[500, 60, 8, 3]),
                torch.randn(32, 4) * 4, torch.randint(0, 4, (32, )), {}),
        'det': (GRWCrossEntropyLoss(rho=0.8, class_counts=[150, 40, 3], background_weight=1.0),
                torch.randn(64, 4) * 4, torch.randint(0, 4, (64, )),
                dict(weight=(torch.rand(64) > 0.1).float(), avg_factor=64)),
        'seg': (SegGRWCrossEntropyLoss(rho=0.3, class_counts=[900., 90., 9.]),
                torch.randn(2, 3, 16, 16) * 4, torch.randint(0, 3, (2, 16, 16)), {}),
    }
    losses['seg'][2][0, :4] = 255
    for name, (loss, logits, labels, kwargs) in losses.items():
        high = loss(logits, labels, **kwargs)
        with torch.autocast(**BF16):
            low = loss(logits.bfloat16(), labels, **kwargs)
        assert low.dtype == torch.float32, (name, low.dtype)
        assert torch.isfinite(low) and float(abs(low - high)) <= TOL * float(high), \
            (name, float(low), float(high))


def _gpu_check():
    """tools/gpu_check.py, whose tiny host models these tests share."""
    import importlib.util
    import os.path as osp
    path = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
                    'gpu_check.py')
    spec = importlib.util.spec_from_file_location('gpu_check_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('host', ['cls', 'seg', 'det'])
def test_host_heads_under_bf16_autocast(host):
    """The DisAlign heads of mmpretrain (DisAlignLinearClsHead), mmseg
    (DisAlignFCNHead) and mmdet (Shared2FCBBoxHead with DisAlignLinear) with
    their GRW losses, in the tiny models tools/gpu_check.py trains on a GPU:
    loss and calibration gradients under bf16 autocast against float32, with
    a trained-looking calibration."""
    model, data = _gpu_check().tiny_model(host)
    cals = [m for m in model.modules() if isinstance(m, DisAlignCalibration)]
    assert len(cals) == 1
    _randomize(cals[0])
    model.train()
    results = {}
    for autocast in (False, True):
        model.zero_grad()
        batch = model.data_preprocessor(copy.deepcopy(data), True)
        with torch.autocast(**BF16, enabled=autocast):
            losses = model(**batch, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        loss.backward()
        results[autocast] = (loss.detach(), {n: p.grad.clone()
                                             for n, p in cals[0].named_parameters()})
    (high, high_grads), (low, low_grads) = results[False], results[True]
    assert torch.isfinite(low) and low.dtype == torch.float32
    assert abs(float(low) - float(high)) <= TOL * float(high), (host, float(low), float(high))
    scale = max(float(g.abs().max()) for g in high_grads.values())
    assert scale > 0
    for name, g in high_grads.items():
        _assert_close_to_fp32(low_grads[name], g, f'{host} d/d {name}', GRAD_TOL, scale)


@OPTIM_WRAPPERS.register_module(force=True)
class CPUAutocastOptimWrapper(OptimWrapper):
    """mmengine's OptimWrapper whose ``optim_context`` (where the model's
    loss runs in ``train_step``) autocasts to bf16 on the CPU: what
    AmpOptimWrapper does on a GPU (it refuses to be built without one)."""

    def optim_context(self, model):
        import contextlib

        @contextlib.contextmanager
        def context():
            with super(CPUAutocastOptimWrapper, self).optim_context(model), \
                    torch.autocast(**BF16):
                yield

        return context()


@pytest.mark.slow
def test_stage2_step_under_bf16_autocast(tmp_path):
    """A Runner's stage 2 (frozen stage-1 model, DisAlignFreezeHook, GRW
    loss) for 4 iterations in float32 and under bf16 autocast: the trained
    calibration agrees, the frozen weights stay bit-identical."""
    stage1 = make_runner(tmp_path / 'stage1', model=TinyModel(disalign=False), max_iters=3)
    stage1.train()
    ckpt = str(tmp_path / 'stage1' / 'iter_3.pth')
    trained = {}
    for name, wrapper in (('fp32', 'OptimWrapper'), ('bf16', 'CPUAutocastOptimWrapper')):
        runner = make_runner(
            tmp_path / name, max_iters=4, hooks=[dict(type='DisAlignFreezeHook')],
            load_from=ckpt,
            optim_wrapper=dict(type=wrapper, optimizer=dict(type='SGD', lr=0.5, momentum=0.9)))
        runner.train()
        trained[name] = copy.deepcopy(runner.model.state_dict())
        losses = runner.message_hub.get_scalar('train/loss').data[0]
        assert len(losses) == 4 and all(map(torch.isfinite, torch.as_tensor(losses))), losses
    frozen = stage1.model.state_dict()
    for k, v in frozen.items():
        if not k.startswith('fc.') or k in ('fc.weight', 'fc.bias'):
            if v.is_floating_point() and 'running' not in k:
                assert torch.equal(trained['bf16'][k], v), k
    cal = [k for k in trained['fp32'] if k.startswith('fc.calibration.')
           and trained['fp32'][k].is_floating_point()]
    assert 'fc.calibration.alpha' in cal and 'fc.calibration.beta' in cal
    moved = max(float((trained['fp32'][k] - torch.ones_like(trained['fp32'][k])).abs().max())
                for k in ('fc.calibration.alpha', ))
    assert moved > 0.01  # stage 2 trained something to compare
    for k in cal:
        err = float((trained['bf16'][k] - trained['fp32'][k]).abs().max())
        assert err <= 0.05, (k, err)
