"""Cost of DisAlign stage 2 against stage 1 and inference, per host
(``tools/benchmark/stage2_cost.py`` is its command line; its docstring says
what is timed and how). Needs the host package of each host measured
(mmpretrain, mmsegmentation, mmdet).
"""
import copy
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..cls.datasets import long_tail_counts
from ..engine import FrozenStage2, calibration_state_names, freeze_stage2
from .configs import CONFIGS, config_path

# host -> scope, plugin module, stage-1 / stage-2 configs (keys of
# disalign_mm.benchmarks.configs.CONFIGS), default image size (H, W), batch size,
# number of classes
HOSTS: Dict[str, dict] = dict(
    cls=dict(
        scope='mmpretrain', plugin='disalign_mm.cls',
        stage1='fmnist_stage1', stage2='fmnist_disalign',
        size=(28, 28), batch_size=128, num_classes=10),
    seg=dict(
        scope='mmseg', plugin='disalign_mm.seg',
        stage1='ade20k_fcn_stage1', stage2='ade20k_fcn_disalign',
        size=(128, 128), batch_size=4, num_classes=150),
    det=dict(
        scope='mmdet', plugin='disalign_mm.det',
        stage1='lvis_mask_rcnn_stage1', stage2='lvis_mask_rcnn_disalign',
        size=(256, 256), batch_size=2, num_classes=1203),
)
TARGET = 1.3


@dataclass
class CostSettings:
    """What a measurement runs (the options of ``stage2_cost.py``; None
    takes the host's default of :data:`HOSTS`).

    Attributes:
        img_size (int, optional): Square input size.
        batch_size (int, optional): Images per batch.
        num_classes (int, optional): Classes of the heads.
        depth (int, optional): Backbone depth override (e.g. 18).
        cfg_options (dict, optional): Overrides of both configs.
        lr (float): Learning rate of both optimizers. Defaults to 1e-5.
        det_bg_logit (float): Added to the random detector's background
            logit and that of ``det_fg_classes`` classes. Defaults to 10.
        det_fg_classes (int): Defaults to 3.
        warmup (int): Untimed rounds. Defaults to 2.
        repeats (int): Timed rounds (the median is reported). Defaults to 10.
        target (float): Target of stage2 / infer. Defaults to 1.3.
    """
    img_size: Optional[int] = None
    batch_size: Optional[int] = None
    num_classes: Optional[int] = None
    depth: Optional[int] = None
    cfg_options: Optional[dict] = None
    lr: float = 1e-5
    det_bg_logit: float = 10.0
    det_fg_classes: int = 3
    warmup: int = 2
    repeats: int = 10
    target: float = TARGET


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
        cfg = Config.fromfile(config_path(spec[stage]))
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
    import tempfile

    from ..engine.build import build_model
    spec = HOSTS[host]
    importlib.import_module(spec['plugin'])
    cfg1, cfg2 = load_configs(host, num_classes, size, depth, cfg_options)

    def build(cfg):
        # the models as the host's Runner builds them (SyncBN reverted, the
        # top-level data_preprocessor merged), seeded, on the CPU
        with tempfile.TemporaryDirectory(prefix='disalign_mm_cost_') as runs:
            return build_model(cfg, runs, randomness=dict(seed=0)).cpu()

    model1 = build(cfg1)
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
    model2 = build(cfg2)
    missing, _ = model2.load_state_dict(model1.state_dict(), strict=False)
    calib = set(calibration_state_names(model2))
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


@dataclass
class HostBench:
    """What is timed for one host: ``jobs`` (``stage1``, ``stage2``,
    ``infer``: callables on the same batch) and the models they run."""
    host: str
    size: Tuple[int, int]
    num_classes: int
    batch_size: int
    model1: torch.nn.Module
    model2: torch.nn.Module
    frozen: FrozenStage2
    jobs: Dict[str, Callable[[], None]]
    detections: List[float] = field(default_factory=list)


def prepare_host(host: str, args: CostSettings) -> HostBench:
    """Build the host's models, batch and optimizers, freeze the stage-2
    model, and return the three jobs to time."""
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
    frozen = freeze_stage2(model2)  # what DisAlignFreezeHook runs before the run
    optim2 = build_optim(model2, cfg2, args.lr)
    detections: List[float] = []

    def stage1():
        out = model1.train_step(copy.deepcopy(batch), optim1)
        _check_finite(out, 'stage-1 step')

    def stage2():
        model2.train()  # as the train loop, then the hook's eval of the frozen part
        frozen.set_eval()
        out = model2.train_step(copy.deepcopy(batch), optim2)
        _check_finite(out, 'stage-2 step')

    def infer():
        model2.eval()
        with torch.no_grad():
            out = model2.test_step(copy.deepcopy(batch))
        if host == 'det':
            detections.append(float(np.mean([len(o.pred_instances) for o in out])))

    return HostBench(host, size, num_classes, batch_size, model1, model2, frozen,
                     dict(stage1=stage1, stage2=stage2, infer=infer), detections)


def time_jobs(jobs: Dict[str, Callable[[], None]], warmup: int,
              repeats: int) -> Dict[str, List[float]]:
    """Milliseconds of each job: ``warmup`` untimed rounds, then ``repeats``
    rounds, the jobs interleaved (drifts hit all of them alike)."""
    for _ in range(warmup):
        for fn in jobs.values():
            fn()
    times: Dict[str, List[float]] = {k: [] for k in jobs}
    for _ in range(repeats):
        for k, fn in jobs.items():
            times[k].append(_timed(fn))
    return times


def measure_host(host: str, args: CostSettings) -> dict:
    """Time the host's three jobs (:func:`prepare_host`, :func:`time_jobs`):
    medians, ratios, trainable parameters, and every time measured."""
    spec = HOSTS[host]
    bench = prepare_host(host, args)
    times = time_jobs(bench.jobs, args.warmup, args.repeats)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio_fwd = med['stage2'] / med['infer']
    model2 = bench.model2
    trainable = [(n, p) for n, p in model2.named_parameters() if p.requires_grad]
    return dict(
        host=host,
        stage1_config=CONFIGS[spec['stage1']], stage2_config=CONFIGS[spec['stage2']],
        img_size=list(bench.size), batch_size=bench.batch_size, num_classes=bench.num_classes,
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
        detections_per_image=statistics.mean(bench.detections) if bench.detections else None,
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
