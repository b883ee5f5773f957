"""Cost of DisAlign stage 2 against stage 1 and inference, per host.

For each host the stage-1 and stage-2 models are built from the project's
own shipped configs, in one process, and timed on the SAME synthetic batch
(in the data preprocessor's input format, with the host's data samples):

* ``stage1``: ``model.train_step`` of the stage-1 model, every parameter
  trainable, with the config's SGD optimizer;
* ``stage2``: ``model.train_step`` of the stage-2 model frozen exactly as
  :class:`disalign_mm.engine.DisAlignFreezeHook` freezes it (the hook's own
  ``before_run`` / ``before_train_iter`` run on a minimal runner stand-in:
  only calibration parameters train, frozen modules in eval mode);
* ``infer``: ``model.test_step`` of the stage-2 model under
  ``torch.no_grad()`` in eval mode (pre-processing, forward and the host's
  post-processing, as deployed). For det, the random detector is made to
  score like a trained one: ``--det-bg-logit`` (default 10) is added to the
  background logit and to the logits of ``--det-fg-classes`` classes
  (default 3). Without it every one of the 1203 classes of every proposal
  passes LVIS' ``score_thr=1e-4`` and NMS over 1.2M boxes per image
  dominates (about 25 s per batch on 2 CPU cores); with the background
  alone nothing passes and inference skips the mask head. With both, a few
  classes per proposal pass, and the detector keeps its ``max_per_img``
  (300 for LVIS) detections, masks included, as a trained LVIS detector
  does. The JSON records the mean number of detections per image.

After warm-up iterations the three are repeated interleaved and the median
of each is reported, with the ratios stage2 / infer and stage2 / stage1, the
number of trainable stage-2 parameters, and whether stage2 / infer is within
the target (1.3 by default).

The weights are random (``init_cfg=None``, no download); the stage-2 model
gets the stage-1 model's weights, as with ``load_from``. The optimizer
learning rate is set to ``--lr`` (default 1e-5) so that repeated steps keep a
random model finite; the cost of an SGD step does not depend on it.

Examples::

    python tools/benchmark/stage2_cost.py --hosts cls seg det --repeats 10 \\
        --json work_dirs/stage2_cost.json
    # small and fast (what the unit test runs)
    python tools/benchmark/stage2_cost.py --hosts cls --img-size 16 \\
        --batch-size 4 --num-classes 5 --repeats 2 --warmup 1
"""
import argparse
import copy
import json
import logging
import os
import os.path as osp
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from disalign_mm.cls.datasets import long_tail_counts

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')

# host -> scope, plugin module, stage-1 / stage-2 configs, default image
# size (H, W), batch size, number of classes
HOSTS: Dict[str, dict] = dict(
    cls=dict(
        scope='mmpretrain', plugin='disalign_mm.cls',
        stage1='fashion_mnist_lt/fmnist-lt_resnet-s_stage1.py',
        stage2='fashion_mnist_lt/fmnist-lt_resnet-s_stage2_disalign.py',
        size=(28, 28), batch_size=128, num_classes=10),
    seg=dict(
        scope='mmseg', plugin='disalign_mm.seg',
        stage1='ade20k/fcn_r50-d8_4xb4-160k_ade20k-512x512.py',
        stage2='ade20k/fcn_r50-d8_disalign_4xb4-8k_ade20k-512x512.py',
        size=(128, 128), batch_size=4, num_classes=150),
    det=dict(
        scope='mmdet', plugin='disalign_mm.det',
        stage1='lvis_v1/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py',
        stage2='lvis_v1/disalign_mask-rcnn_r50_fpn_sample1e-3_9k_lvis-v1.py',
        size=(256, 256), batch_size=2, num_classes=1203),
)
TARGET = 1.3


def _expansion(depth: int) -> int:
    return 1 if depth < 50 else 4


def host_options(host: str, num_classes: int, size: Tuple[int, int],
                 depth: Optional[int]) -> Dict[str, object]:
    """``--cfg-options``-style overrides: no pretrained weights, the number
    of classes (and GRW counts of that length), the input size, and
    optionally the backbone depth (with the channels that follow from it)."""
    # the GRW loss needs counts; their values do not change the cost
    counts = long_tail_counts(1000, num_classes, 100)
    if host == 'cls':
        opts = {
            'model.data_preprocessor.num_classes': num_classes,
            'model.head.num_classes': num_classes,
            'model.backbone.init_cfg': None,
        }
        s2 = {'model.head.loss.class_counts': counts}
        if depth is not None:
            opts['model.backbone.depth'] = depth
            opts['model.head.in_channels'] = 64 * _expansion(depth)
    elif host == 'seg':
        opts = {
            'model.pretrained': None,
            'model.backbone.init_cfg': None,
            'model.data_preprocessor.size': size,
            'model.decode_head.num_classes': num_classes,
            'model.auxiliary_head.num_classes': num_classes,
        }
        # the shipped ADE20K pixel counts, unless the classes change
        s2 = {} if num_classes == HOSTS['seg']['num_classes'] else \
            {'model.decode_head.loss_decode.class_counts': counts}
        if depth is not None:
            e = _expansion(depth)
            opts.update({'model.backbone.depth': depth,
                         'model.decode_head.in_channels': 512 * e,
                         'model.auxiliary_head.in_channels': 256 * e})
    elif host == 'det':
        opts = {
            'model.backbone.init_cfg': None,
            'model.roi_head.bbox_head.num_classes': num_classes,
            'model.roi_head.mask_head.num_classes': num_classes,
        }
        s2 = {'model.roi_head.bbox_head.loss_cls.class_counts': counts}
        if depth is not None:
            e = _expansion(depth)
            opts.update({'model.backbone.depth': depth,
                         'model.neck.in_channels': [64 * e * 2**i for i in range(4)]})
    else:
        raise ValueError(f'unknown host {host!r}; choose from {sorted(HOSTS)}')
    return dict(stage1=opts, stage2=s2)


def _present(cfg, key: str) -> bool:
    """Whether no parent of the dotted ``key`` is None in ``cfg``."""
    node = cfg
    for part in key.split('.')[:-1]:
        node = node.get(part) if hasattr(node, 'get') else None
        if node is None:
            return False
    return True


def load_configs(host: str, num_classes: int, size: Tuple[int, int],
                 depth: Optional[int] = None, cfg_options: Optional[dict] = None):
    """The host's shipped stage-1 and stage-2 configs with the overrides of
    :func:`host_options` and then ``cfg_options`` applied to both."""
    from mmengine.config import Config
    spec = HOSTS[host]
    opts = host_options(host, num_classes, size, depth)
    cfgs = []
    for stage in ('stage1', 'stage2'):
        cfg = Config.fromfile(osp.join(CONFIGS, spec[stage]))
        # skip keys under a part the config removes (stage-2 seg: no
        # auxiliary head)
        cfg.merge_from_dict({k: v for k, v in opts['stage1'].items() if _present(cfg, k)})
        if stage == 'stage2':
            cfg.merge_from_dict(dict(opts['stage2']))
        if cfg_options:
            cfg.merge_from_dict(dict(cfg_options))
        cfgs.append(cfg)
    return cfgs


def build_models(host: str, num_classes: int, size: Tuple[int, int],
                 depth: Optional[int] = None, cfg_options: Optional[dict] = None,
                 det_bg_logit: float = 0.0, det_fg_classes: int = 0):
    """Build ``(cfg1, model1, cfg2, model2)``; ``model2`` gets ``model1``'s
    weights (its calibration keys stay at their initial values).
    ``det_bg_logit`` is added to the detector's background logit bias and to
    that of its first ``det_fg_classes`` classes."""
    import importlib

    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    spec = HOSTS[host]
    importlib.import_module(spec['plugin'])
    init_default_scope(spec['scope'])
    registry = importlib.import_module(f"{spec['scope']}.registry").MODELS
    cfg1, cfg2 = load_configs(host, num_classes, size, depth, cfg_options)
    torch.manual_seed(0)
    model1 = revert_sync_batchnorm(registry.build(cfg1.model))
    if host == 'det' and det_bg_logit:
        # a random detector scores every class of every proposal near
        # 1 / 1204, above LVIS' score_thr 1e-4, and its post-processing then
        # sorts 1000 x 1203 boxes: favour background, as a trained one does,
        # and a few classes, so that it keeps max_per_img detections
        if det_fg_classes < 0 or det_fg_classes >= num_classes:
            raise ValueError(f'det_fg_classes={det_fg_classes} must be in [0, {num_classes})')
        with torch.no_grad():
            bias = model1.roi_head.bbox_head.fc_cls.bias
            bias[-1] += det_bg_logit
            bias[:det_fg_classes] += det_bg_logit
    model2 = revert_sync_batchnorm(registry.build(cfg2.model))
    missing, _ = model2.load_state_dict(model1.state_dict(), strict=False)
    from disalign_mm.engine import calibration_param_names
    calib = set(calibration_param_names(model2))
    others = sorted(set(missing) - calib)
    if others:
        raise RuntimeError(f'stage-2 {host} model has weights the stage-1 model lacks: '
                           f'{others[:5]}; the shipped configs should differ by the '
                           'calibration only')
    return cfg1, model1, cfg2, model2


def make_batch(host: str, batch_size: int, size: Tuple[int, int], num_classes: int,
               seed: int = 0) -> dict:
    """A synthetic batch in the data preprocessor's input format: a list of
    uint8 CHW images and the host's data samples with ground truth."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.RandomState(seed)
    h, w = size
    chans = 1 if host == 'cls' else 3
    inputs = [torch.randint(0, 256, (chans, h, w), generator=g, dtype=torch.uint8)
              for _ in range(batch_size)]
    samples = []
    for i in range(batch_size):
        meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                    scale_factor=(1.0, 1.0), flip=False, flip_direction=None,
                    img_path=f'synthetic_{i}.png')
        if host == 'cls':
            from mmpretrain.structures import DataSample
            s = DataSample(metainfo=meta).set_gt_label(int(rng.randint(num_classes)))
        elif host == 'seg':
            from mmengine.structures import PixelData
            from mmseg.structures import SegDataSample
            seg = torch.randint(0, num_classes, (1, h, w), generator=g)
            seg[:, :h // 8] = 255  # some ignored pixels, as ADE20K's 'other'
            s = SegDataSample(metainfo=meta)
            s.gt_sem_seg = PixelData(data=seg)
        else:
            from mmdet.structures import DetDataSample
            from mmdet.structures.mask import BitmapMasks
            from mmengine.structures import InstanceData
            n = 3
            x1 = rng.randint(0, w // 2, n)
            y1 = rng.randint(0, h // 2, n)
            x2 = x1 + rng.randint(w // 8, w // 2, n)
            y2 = y1 + rng.randint(h // 8, h // 2, n)
            masks = np.zeros((n, h, w), dtype=np.uint8)
            for j in range(n):
                masks[j, y1[j]:y2[j], x1[j]:x2[j]] = 1
            s = DetDataSample(metainfo=meta)
            s.gt_instances = InstanceData(
                bboxes=torch.tensor(np.stack([x1, y1, x2, y2], 1), dtype=torch.float32),
                labels=torch.tensor(rng.randint(0, num_classes, n), dtype=torch.long),
                masks=BitmapMasks(masks, h, w))
            s.ignored_instances = InstanceData(
                bboxes=torch.zeros((0, 4)), labels=torch.zeros((0, ), dtype=torch.long))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def freeze_stage2(model: torch.nn.Module):
    """Freeze ``model`` with :class:`DisAlignFreezeHook` itself (its
    ``before_run`` on a minimal runner stand-in). Returns ``(hook, runner)``:
    ``hook.before_train_iter(runner, i)`` puts the frozen modules in eval."""
    from disalign_mm.engine import DisAlignFreezeHook
    hook = DisAlignFreezeHook()
    logger = logging.getLogger('stage2_cost')
    runner = SimpleNamespace(model=model, logger=logger, _resume=False, _load_from=None)
    hook.before_run(runner)
    return hook, runner


def build_optim(model: torch.nn.Module, cfg, lr: float):
    """The config's optimizer wrapper with learning rate ``lr``."""
    from mmengine.optim import build_optim_wrapper
    ow = copy.deepcopy(cfg.optim_wrapper)
    ow.optimizer.lr = lr
    return build_optim_wrapper(model, ow)


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def _check_finite(out: dict, what: str) -> None:
    bad = [k for k, v in out.items()
           if torch.is_tensor(v) and not torch.isfinite(v).all()]
    if bad:
        raise RuntimeError(f'{what}: non-finite {bad}; lower --lr')


def measure_host(host: str, args) -> dict:
    spec = HOSTS[host]
    size = (args.img_size, args.img_size) if args.img_size else spec['size']
    num_classes = args.num_classes or spec['num_classes']
    batch_size = args.batch_size or spec['batch_size']
    cfg1, model1, cfg2, model2 = build_models(host, num_classes, size, args.depth,
                                              args.cfg_options, args.det_bg_logit,
                                              args.det_fg_classes if host == 'det' else 0)
    batch = make_batch(host, batch_size, size, num_classes)

    model1.train()
    optim1 = build_optim(model1, cfg1, args.lr)
    hook, runner = freeze_stage2(model2)
    optim2 = build_optim(model2, cfg2, args.lr)
    trainable = [(n, p) for n, p in model2.named_parameters() if p.requires_grad]

    def stage1():
        out = model1.train_step(copy.deepcopy(batch), optim1)
        _check_finite(out, 'stage-1 step')

    def stage2():
        model2.train()  # as the train loop, then the hook's eval of the frozen part
        hook.before_train_iter(runner, 0)
        out = model2.train_step(copy.deepcopy(batch), optim2)
        _check_finite(out, 'stage-2 step')

    detections: List[float] = []

    def infer():
        model2.eval()
        with torch.no_grad():
            out = model2.test_step(copy.deepcopy(batch))
        if host == 'det':
            detections.append(float(np.mean([len(o.pred_instances) for o in out])))

    jobs = dict(stage1=stage1, stage2=stage2, infer=infer)
    for _ in range(args.warmup):
        for fn in jobs.values():
            fn()
    times: Dict[str, List[float]] = {k: [] for k in jobs}
    for _ in range(args.repeats):  # interleaved: drifts hit all three alike
        for k, fn in jobs.items():
            times[k].append(_timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio_fwd = med['stage2'] / med['infer']
    return dict(
        host=host,
        stage1_config=spec['stage1'], stage2_config=spec['stage2'],
        img_size=list(size), batch_size=batch_size, num_classes=num_classes,
        depth=args.depth, threads=torch.get_num_threads(),
        warmup=args.warmup, repeats=args.repeats,
        stage1_ms=med['stage1'], stage2_ms=med['stage2'], infer_ms=med['infer'],
        stage2_over_infer=ratio_fwd,
        stage2_over_stage1=med['stage2'] / med['stage1'],
        trainable_params=sum(p.numel() for _, p in trainable),
        trainable_tensors=len(trainable),
        total_params=sum(p.numel() for p in model2.parameters()),
        target=args.target, meets_target=bool(ratio_fwd <= args.target),
        det_bg_logit=args.det_bg_logit if host == 'det' else None,
        det_fg_classes=args.det_fg_classes if host == 'det' else None,
        detections_per_image=statistics.mean(detections) if detections else None,
        times_ms=times)


def format_table(results: Sequence[dict]) -> str:
    head = ('host', 'input', 'stage1 ms', 'stage2 ms', 'infer ms', 's2/infer',
            's2/s1', 'trainable', 's2/infer<=target')
    rows = [head]
    for r in results:
        rows.append((
            r['host'], f"{r['batch_size']}x{r['img_size'][0]}x{r['img_size'][1]}",
            f"{r['stage1_ms']:.1f}", f"{r['stage2_ms']:.1f}", f"{r['infer_ms']:.1f}",
            f"{r['stage2_over_infer']:.2f}", f"{r['stage2_over_stage1']:.2f}",
            f"{r['trainable_params']:,} / {r['total_params']:,}",
            f"{'yes' if r['meets_target'] else 'NO'} ({r['target']})"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ['| ' + ' | '.join(c.ljust(w) for c, w in zip(row, widths)) + ' |'
             for row in rows]
    lines.insert(1, '|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    return '\n'.join(lines)


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--hosts', nargs='+', default=['cls', 'seg', 'det'], choices=sorted(HOSTS))
    p.add_argument('--repeats', type=int, default=10, help='timed repetitions (median)')
    p.add_argument('--warmup', type=int, default=2, help='untimed iterations first')
    p.add_argument('--img-size', type=int, default=None,
                   help='square input size for every host (default: cls 28, seg 128, det 256)')
    p.add_argument('--batch-size', type=int, default=None,
                   help='default: the config per-GPU batch (cls 128, seg 4, det 2)')
    p.add_argument('--num-classes', type=int, default=None,
                   help='default: the config (cls 10, seg 150, det 1203)')
    p.add_argument('--depth', type=int, default=None,
                   help='backbone depth override, e.g. 18 (default: the config)')
    p.add_argument('--threads', type=int, default=min(4, os.cpu_count() or 1),
                   help='torch.set_num_threads (default: min(4, CPUs))')
    p.add_argument('--lr', type=float, default=1e-5,
                   help='learning rate of both optimizers (default 1e-5)')
    p.add_argument('--det-bg-logit', type=float, default=10.0,
                   help='added to the random detector\'s background logit and to '
                   'that of --det-fg-classes classes, so that a few classes per box '
                   'pass LVIS\' score_thr, as with a trained model (default 10; 0: '
                   'all 1000 x 1203 boxes reach NMS)')
    p.add_argument('--det-fg-classes', type=int, default=3,
                   help='classes that pass the score threshold with --det-bg-logit '
                   '(default 3: the detector keeps max_per_img detections and runs '
                   'its mask head on them; 0: nothing is detected)')
    p.add_argument('--target', type=float, default=TARGET,
                   help=f'target for stage2 / infer (default {TARGET})')
    p.add_argument('--json', default=None, help='write the results here')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                   help='overrides applied to both configs of every host')
    args = p.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        p.error('--repeats must be >= 1 and --warmup >= 0')
    return args


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for host in args.hosts:
        t = time.perf_counter()
        r = measure_host(host, args)
        results.append(r)
        print(f'{host}: measured in {time.perf_counter() - t:.1f} s', file=sys.stderr)
    print(f'stage-2 cost, median of {args.repeats} interleaved repeats after '
          f'{args.warmup} warm-up, {torch.get_num_threads()} threads, '
          f'device cpu, torch {torch.__version__}')
    print(format_table(results))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(results=results), f, indent=1)
    return results


if __name__ == '__main__':
    main()
