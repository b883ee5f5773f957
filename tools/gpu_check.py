#!/usr/bin/env python
"""GPU readiness check of disalign_mm: everything a user runs on one CUDA GPU,
on tiny models and data, in a few minutes (the budget: 8 minutes).

On one CUDA GPU it runs:

1. a stage-2 step of each host (mmpretrain's DisAlignLinearClsHead, mmseg's
   DisAlignFCNHead, mmdet's Shared2FCBBoxHead with DisAlignLinear) on a tiny
   model: the stage-1 part frozen (``freeze_stage2``), two SGD steps of the
   calibration with the GRW loss, in float32;
2. the same under mmengine's ``AmpOptimWrapper`` with float16 and with
   bfloat16: finite, the first loss within 2% of float32's, the frozen
   weights bit-identical, the calibration moved;
3. ``tools/select_second_stage.py --device cuda`` on a tiny image-folder
   data set and stage-1 config (the stage-1 checkpoint is the config's
   model as built: the tool only needs a checkpoint that fits);
4. a one-process NCCL launch of a stage 2 (``torchrun --nproc_per_node 1``
   of mmpretrain's ``tools/train.py --launcher pytorch``, DisAlignFreezeHook
   loading that checkpoint).

It prints one table (what ran, PASS / FAIL / SKIP, seconds) and exits 1 when
a check failed. Without CUDA it says so and runs the CPU parts as a dry run
(the float32 steps, the bf16 steps under CPU autocast, the tool with
``--device cpu`` and its one-line refusal of ``--device cuda``, the launch
with the gloo backend); the float16 steps need a GPU and are skipped. The dry
run exits 0 unless one of its checks failed.

Usage::

    python tools/gpu_check.py                 # cuda when available, else the dry run
    python tools/gpu_check.py --device cpu    # the dry run on a machine with a GPU
    python tools/gpu_check.py --work-dir DIR  # keep the data, configs and logs
"""
import argparse
import contextlib
import copy
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
LOSS_TOL = 0.02  # a mixed-precision first loss against float32's, relative
CLASSES = ('a', 'b', 'c', 'd')
TRAIN = (24, 12, 6, 4)  # a long-tailed tiny image-folder data set
TEST = 4

STAGE1 = '''
_base_ = ['mmpretrain::_base_/default_runtime.py']
data_root = {root!r}
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(num_classes=4, mean=[60.0] * 3, std=[70.0] * 3, to_rgb=False),
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4,
                  num_stages=2, strides=(1, 2), dilations=(1, 1), out_indices=(1, ),
                  style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=4, in_channels=8,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=8, num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=8, num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='test',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
'''

STAGE2 = '''
_base_ = ['./stage1.py']
custom_imports = dict(imports=['disalign_mm.cls'], allow_failed_imports=False)
model = dict(head=dict(type='DisAlignLinearClsHead',
                       loss=dict(type='GRWCrossEntropyLoss', rho=1.0)))
custom_hooks = [dict(type='ClassCountsHook'), dict(type='DisAlignFreezeHook')]
# as the shipped stage-2 configs: DDP over a model whose stage-1 part is frozen
model_wrapper_cfg = dict(find_unused_parameters=True)
load_from = {checkpoint!r}
env_cfg = dict(dist_cfg=dict(backend={backend!r}))
'''


class Skip(Exception):
    """A check that cannot run here (the reason is its note)."""


class Table:
    """The rows of the report: (check, status, seconds, note)."""

    def __init__(self) -> None:
        self.rows = []

    def run(self, name: str, fn, *args) -> None:
        print(f'[gpu_check] {name} ...', flush=True)
        start = time.time()
        try:
            status, note = 'PASS', fn(*args) or ''
        except Skip as e:
            status, note = 'SKIP', str(e)
        except Exception as e:  # noqa: BLE001  (every failure is a row of the table)
            traceback.print_exc()
            lines = str(e).strip().splitlines() or ['']
            status, note = 'FAIL', f'{type(e).__name__}: {lines[-1][:200]}'
        self.rows.append((name, status, time.time() - start, note))

    def failed(self) -> bool:
        return any(status == 'FAIL' for _, status, _, _ in self.rows)

    def markdown(self) -> str:
        out = ['| check | result | seconds | note |', '|---|---|---:|---|']
        out += [f'| {n} | {s} | {t:.1f} | {note} |' for n, s, t, note in self.rows]
        return '\n'.join(out)


# ---------------------------------------------------------------- host steps
def tiny_model(host: str):
    """A tiny mmengine model of ``host`` with its DisAlign head and GRW loss,
    and one fixed batch for it."""
    import torch
    from mmengine.model import BaseModel
    from mmengine.registry import init_default_scope
    from torch import nn

    g = torch.Generator().manual_seed(0)
    init_default_scope(dict(cls='mmpretrain', seg='mmseg', det='mmdet')[host])
    if host == 'cls':
        from mmpretrain.registry import MODELS
        from mmpretrain.structures import DataSample

        import disalign_mm.cls  # noqa: F401
        head = MODELS.build(dict(type='DisAlignLinearClsHead', num_classes=4, in_channels=8,
                                 loss=dict(type='GRWCrossEntropyLoss', rho=1.0,
                                           class_counts=list(TRAIN))))
        samples = [DataSample().set_gt_label(int(c)) for c in torch.arange(16) % 4]
        data = dict(inputs=torch.randn(16, 3, 8, 8, generator=g), data_samples=samples)
    elif host == 'seg':
        from mmengine.structures import PixelData
        from mmseg.registry import MODELS
        from mmseg.structures import SegDataSample

        import disalign_mm.seg  # noqa: F401
        head = MODELS.build(dict(
            type='DisAlignFCNHead', in_channels=8, channels=8, num_convs=1, concat_input=False,
            num_classes=4, dropout_ratio=0.0, norm_cfg=dict(type='BN'),
            loss_decode=dict(type='SegGRWCrossEntropyLoss', rho=0.3,
                             class_counts=[400., 100., 20., 5.])))
        samples = []
        for lab in torch.randint(0, 4, (2, 8, 8), generator=g):
            s = SegDataSample()
            s.gt_sem_seg = PixelData(data=lab[None])
            samples.append(s)
        data = dict(inputs=torch.randn(2, 3, 8, 8, generator=g), data_samples=samples)
    elif host == 'det':
        from mmdet.registry import MODELS

        import disalign_mm.det  # noqa: F401
        head = MODELS.build(dict(
            type='Shared2FCBBoxHead', in_channels=8, fc_out_channels=16, roi_feat_size=3,
            num_classes=4, cls_predictor_cfg=dict(type='DisAlignLinear'),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='GRWCrossEntropyLoss', rho=0.8, background_weight=1.0,
                          class_counts=list(TRAIN)),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)))
        data = dict(inputs=torch.randn(12, 3, 3, 3, generator=g),
                    labels=torch.arange(12) % 5, rois=torch.cat(
                        [torch.zeros(12, 1), torch.tensor([[0., 0., 10., 10.]]).repeat(12, 1)],
                        1))
    else:
        raise ValueError(host)

    class Tiny(BaseModel):
        """conv + BN (the frozen stage-1 part) -> the host's head."""

        def __init__(self) -> None:
            super().__init__()
            self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8),
                                          nn.ReLU())
            self.head = head

        def forward(self, inputs, data_samples=None, labels=None, rois=None, mode='loss'):
            x = self.backbone(inputs)
            if host == 'cls':
                return self.head.loss((x.mean((2, 3)), ), data_samples)
            if host == 'seg':
                return self.head.loss([x], data_samples, {})
            cls_score, bbox_pred = self.head(x)
            n, dev = len(labels), x.device
            losses = self.head.loss(cls_score, bbox_pred, rois, labels, torch.ones(n, device=dev),
                                    torch.zeros(n, 4, device=dev), torch.zeros(n, 4, device=dev))
            return {k: v for k, v in losses.items() if k.startswith('loss')}

    torch.manual_seed(0)
    model = Tiny()
    model.init_weights()
    return model, data


class CPUAutocastOptimWrapper:
    """Built around an mmengine OptimWrapper: its ``optim_context`` (where
    ``train_step`` runs the loss) autocasts to bf16 on the CPU, what
    AmpOptimWrapper does on a GPU (it refuses to be built without one)."""

    @staticmethod
    def wrap(optim_wrapper):
        import torch
        original = optim_wrapper.optim_context

        @contextlib.contextmanager
        def optim_context(model):
            with original(model), torch.autocast('cpu', dtype=torch.bfloat16):
                yield

        optim_wrapper.optim_context = optim_context
        return optim_wrapper


def stage2_steps(host: str, device: str, amp: str = None, steps: int = 2) -> dict:
    """``steps`` stage-2 training steps of the tiny ``host`` model on
    ``device`` (``amp``: None, 'float16' or 'bfloat16'; on the CPU bf16 is
    autocast around mmengine's OptimWrapper). Returns the losses and the
    checks' facts; raises AssertionError on a failed one."""
    import torch
    from mmengine.optim import AmpOptimWrapper, OptimWrapper

    from disalign_mm.engine import freeze_stage2

    model, data = tiny_model(host)
    model.to(device)
    frozen = freeze_stage2(model)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.1, momentum=0.9)
    if amp is None:
        wrapper = OptimWrapper(optimizer)
    elif device.startswith('cuda'):
        wrapper = AmpOptimWrapper(optimizer=optimizer, dtype=amp)
    elif amp == 'bfloat16':
        wrapper = CPUAutocastOptimWrapper.wrap(OptimWrapper(optimizer))
    else:
        raise Skip(f'{amp} autocast needs CUDA')
    losses = []
    for _ in range(steps):
        model.train()
        frozen.set_eval()
        log_vars = model.train_step(copy.deepcopy(data), wrapper)
        losses.append(float(log_vars['loss']))
    assert all(map(lambda v: v == v and abs(v) < float('inf'), losses)), losses
    after = model.state_dict()
    names = set(frozen.trainable)
    moved = [k for k in names if not torch.equal(after[k], before[k])]
    assert moved, f'stage 2 moved none of {sorted(names)}'
    for k, v in before.items():
        if k not in names and v.is_floating_point():
            assert torch.equal(after[k], v), f'the frozen {k} changed'
    return dict(losses=losses, trainable=len(names))


def host_check(host: str, device: str, amp: str = None) -> str:
    out = stage2_steps(host, device, amp)
    note = f'losses {", ".join(f"{v:.4f}" for v in out["losses"])}'
    if amp is not None:
        ref = stage2_steps(host, device, None)['losses'][0]
        err = abs(out['losses'][0] - ref)
        assert err <= LOSS_TOL * abs(ref), \
            f'{amp} first loss {out["losses"][0]:.5f} vs float32 {ref:.5f}'
        note += f' (float32 {ref:.4f})'
    return note


# ------------------------------------------------- the tool and the launcher
def make_data(work_dir: str) -> dict:
    """The tiny image-folder data set, the stage-1 config and its checkpoint
    (the model as built) and the stage-2 config, under ``work_dir``."""
    import cv2
    import numpy as np
    import torch
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    rng = np.random.default_rng(0)
    root = osp.join(work_dir, 'data')
    for split, counts in (('train', TRAIN), ('test', (TEST, ) * len(CLASSES))):
        for c, (name, n) in enumerate(zip(CLASSES, counts)):
            os.makedirs(osp.join(root, split, name), exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 80, size=(16, 16, 3)).astype(np.uint8)
                r, q = divmod(c, 2)
                img[2 + 7 * r:8 + 7 * r, 2 + 7 * q:8 + 7 * q, c % 3] = 250
                cv2.imwrite(osp.join(root, split, name, f'{i:03d}.png'), img)
    stage1 = osp.join(work_dir, 'stage1.py')
    with open(stage1, 'w') as f:
        f.write(STAGE1.format(root=root))
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(stage1).model)
    model.init_weights()
    checkpoint = osp.join(work_dir, 'stage1.pth')
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, checkpoint)
    return dict(root=root, stage1=stage1, checkpoint=checkpoint)


def _env() -> dict:
    """The environment of the subprocesses: this checkout first on the path."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))


def _run(cmd, cwd, log, timeout=300):
    res = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True,
                         timeout=timeout)
    with open(log, 'w') as f:
        f.write(res.stdout + res.stderr)
    return res


def select_tool(files: dict, work_dir: str, device: str) -> str:
    out = osp.join(work_dir, f'select_{device.replace(":", "_")}')
    res = _run([sys.executable, osp.join(ROOT, 'tools', 'select_second_stage.py'),
                files['stage1'], files['checkpoint'], '--work-dir', out, '--device', device,
                '--methods', 'disalign', '--lr', '0.1', '--rho', '1.0', '--epochs', '1'],
               work_dir, out + '.log')
    assert res.returncode == 0, (res.stdout + res.stderr)[-1500:]
    assert osp.isfile(osp.join(out, 'results.md')), 'no results.md'
    return f'log {out}.log'


def select_tool_refuses_cuda(files: dict, work_dir: str) -> str:
    """Without CUDA, ``--device cuda`` is a one-line error before any work."""
    out = osp.join(work_dir, 'select_refused')
    res = _run([sys.executable, osp.join(ROOT, 'tools', 'select_second_stage.py'),
                files['stage1'], files['checkpoint'], '--work-dir', out, '--device', 'cuda'],
               work_dir, out + '.log')
    err = res.stderr.strip().splitlines()
    assert res.returncode != 0 and err and 'Traceback' not in res.stderr, res.stderr[-1500:]
    assert err[-1].startswith('[select_second_stage] error: CUDA is not available on this '
                              'machine (torch ') and err[-1].endswith('use --device cpu'), err[-1]
    assert not osp.exists(osp.join(out, 'stage1_outputs')), 'work was done before the check'
    return err[-1][len('[select_second_stage] error: '):]


# The stage-2 launch on the CPU (the dry run): mmengine 0.10's init_dist
# ('pytorch') calls torch.cuda.set_device, and its DDP wrapper passes
# device_ids=[LOCAL_RANK]; neither exists without a GPU (as in
# tests/test_cls/ddp_train.py). On a GPU mmpretrain's own tools/train.py runs.
CPU_LAUNCH = '''
import sys
import torch
from mmengine.config import Config
from mmengine.runner import Runner
cfg = Config.fromfile(sys.argv[1])
cfg.work_dir, cfg.launcher = sys.argv[2], 'pytorch'
torch.cuda.set_device = lambda device: None
cfg.model_wrapper_cfg['device_ids'] = None
Runner.from_cfg(cfg).train()
'''


def launch_stage2(files: dict, work_dir: str, backend: str) -> str:
    """``torchrun --nproc_per_node 1`` of a stage 2 (DisAlignFreezeHook
    loading the stage-1 checkpoint) through mmengine's pytorch launcher:
    mmpretrain's tools/train.py with ``backend`` (nccl) on a GPU, the CPU
    launch above with gloo otherwise."""
    stage2 = osp.join(work_dir, f'stage2_{backend}.py')
    with open(stage2, 'w') as f:
        f.write(STAGE2.format(checkpoint=files['checkpoint'], backend=backend))
    out = osp.join(work_dir, f'stage2_{backend}')
    if backend == 'nccl':
        import mmpretrain
        train = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'train.py')
        if not osp.isfile(train):
            raise Skip(f'mmpretrain has no {train}')
        script = [train, stage2, '--launcher', 'pytorch', '--work-dir', out]
    else:
        launcher = osp.join(work_dir, 'cpu_launch.py')
        with open(launcher, 'w') as f:
            f.write(CPU_LAUNCH)
        script = [launcher, stage2, out]
    res = _run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '1',
                '--master_port', str(_free_port())] + script, work_dir, out + '.log')
    text = res.stdout + res.stderr
    assert res.returncode == 0, text[-1500:]
    assert 'DisAlignFreezeHook' in text, 'the stage-2 hook did not run'
    assert 'Distributed training: True' in text, 'not a distributed run'
    assert osp.isfile(osp.join(out, 'epoch_1.pth')), 'no stage-2 checkpoint'
    return f'{backend}, log {out}.log'


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def environment() -> str:
    import torch

    import disalign_mm
    found = disalign_mm.find_providers()
    dists = ', '.join(f'{d[0][0]} {d[0][1]}' for k, d in found.items()
                      if d and k not in ('torch', 'numpy'))
    cuda = (f'CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}'
            if torch.cuda.is_available() else 'no CUDA')
    return f'torch {torch.__version__} ({cuda}); {dists}'


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default=None,
                   help='cuda (default when available) or cpu (the dry run)')
    p.add_argument('--work-dir', default=None,
                   help='keep data, configs and logs here (default: a temporary folder)')
    args = p.parse_args(argv)
    import torch

    from disalign_mm.engine.utils import check_device, device_problem
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    dry = not device.startswith('cuda')
    if dry:
        problem = device_problem('cuda')
        print(f'[gpu_check] {problem or "CUDA is available, --device cpu asked"}: '
              'a dry run of the CPU parts', flush=True)
    else:
        check_device(device, exit_prefix='[gpu_check] error: ')
    start = time.time()
    table = Table()
    table.run('environment', environment)
    for host in ('cls', 'seg', 'det'):
        table.run(f'{host}: stage-2 step, float32, {device}', host_check, host, device)
        for amp in ('float16', 'bfloat16'):
            how = 'autocast (CPU)' if dry else 'AmpOptimWrapper'
            table.run(f'{host}: stage-2 step, {how} {amp}, {device}', host_check, host, device,
                      amp)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='gpu_check_')
    os.makedirs(work_dir, exist_ok=True)
    files = {}
    table.run('tiny image-folder data set and stage-1 checkpoint',
              lambda: files.update(make_data(work_dir)) or work_dir)
    if files:
        table.run(f'select_second_stage --device {device}', select_tool, files, work_dir,
                  device)
        if dry and device_problem('cuda'):
            table.run('select_second_stage --device cuda refused in one line',
                      select_tool_refuses_cuda, files, work_dir)
        backend = 'gloo' if dry else 'nccl'
        table.run(f'torchrun --nproc_per_node 1: stage 2, {backend}', launch_stage2, files,
                  work_dir, backend)
    if args.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    print()
    print(table.markdown())
    verdict = 'FAILED' if table.failed() else 'passed'
    print(f'\n[gpu_check] {"dry run (no CUDA) " if dry else ""}{verdict} in '
          f'{time.time() - start:.0f} s')
    return 1 if table.failed() else 0


if __name__ == '__main__':
    sys.exit(main())
