"""How long a second stage takes from cached stage-1 outputs, against
``mim train`` of the same stage-2 config from the images, and at
ImageNet-LT's size (the library of ``tools/benchmark/second_stage_speed.py``).

* :func:`synthetic_problem`: cached outputs of ImageNet-LT's shape (1000
  classes, 2048-d features, 115,846 training images, 1280 down to 5 per
  class), random but class-dependent;
* :func:`time_cached_training`: one stage-2 training of a config from such
  outputs, with and without the cached logits;
* :func:`disalign_head_config`: the DisAlign stage-2 config of a linear
  stage-1 classifier of that shape, with the schedule of
  :class:`~disalign_mm.second_stage.methods.Schedule`.
"""
import math
import time
from typing import Dict, List, Optional

import torch

from ..second_stage.features import class_counts
from ..second_stage.methods import Schedule
from ..second_stage.stage2 import build_stage2_model, train_on_features

#: ImageNet-LT (Liu et al. 2019): classes, feature width of a ResNet-50,
#: training images, most and fewest images of a class
IMAGENET_LT = dict(num_classes=1000, dim=2048, num_images=115846, n_max=1280, n_min=5)


def long_tail_profile(num_classes: int, num_images: int, n_max: int, n_min: int) -> List[int]:
    """Per-class counts from ``n_max`` down to ``n_min`` on an exponential
    profile bent (a power of the class rank) so that they sum to about
    ``num_images``."""
    def counts(p: float) -> List[int]:
        return [max(n_min, round(n_max * (n_min / n_max) ** ((c / (num_classes - 1)) ** p)))
                for c in range(num_classes)]

    lo, hi = 0.05, 20.0  # small p: the profile falls fast (fewer images)
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if sum(counts(mid)) < num_images:
            lo = mid
        else:
            hi = mid
    return counts(math.sqrt(lo * hi))


def synthetic_problem(num_classes: int, dim: int, counts: List[int], test_per_class: int = 5,
                      seed: int = 0) -> Dict[str, dict]:
    """Cached stage-1 outputs (:mod:`~disalign_mm.second_stage.features` format):
    features around a random mean per class, a random linear classifier
    that prefers the frequent classes, its logits; ``train`` with
    ``counts``, ``test`` balanced."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(num_classes, dim, generator=g)
    weight = means / math.sqrt(dim) + 0.02 * torch.randn(num_classes, dim, generator=g)
    bias = torch.log(torch.tensor(counts, dtype=torch.float32)) * 0.5

    def split(per_class):
        labels = torch.cat([torch.full((n, ), c) for c, n in enumerate(per_class)])
        feats = means[labels] + 2.0 * torch.randn(labels.numel(), dim, generator=g)
        return dict(feats=feats, labels=labels, logits=feats @ weight.T + bias)

    return dict(train=split(counts), test=split([test_per_class] * num_classes),
                head_state={'fc.weight': weight, 'fc.bias': bias},
                meta=dict(num_classes=num_classes, in_channels=dim, classes=None))


def disalign_head_config(num_classes: int, dim: int, schedule: Schedule, rho: float = 1.2,
                         seed: int = 0):
    """A DisAlign stage-2 config of a linear classifier: what
    :func:`~disalign_mm.second_stage.methods.stage2_changes` writes for an mmpretrain
    ``LinearClsHead``, reduced to what the cached path reads."""
    from mmengine.config import Config
    sched = schedule.changes()
    return Config(dict(
        model=dict(head=dict(type='DisAlignLinearClsHead', num_classes=num_classes,
                             in_channels=dim, loss=dict(type='GRWCrossEntropyLoss', rho=rho))),
        train_dataloader=dict(batch_size=schedule.batch_size,
                              sampler=dict(type='DefaultSampler', shuffle=True)),
        custom_hooks=[dict(type='DisAlignFreezeHook')], randomness=dict(seed=seed), **sched))


def time_cached_training(cfg, data: Dict[str, dict], cached_logits: bool = True,
                         epochs: Optional[int] = None) -> dict:
    """Wall time of one stage-2 training of ``cfg`` from ``data['train']``
    (optionally only ``epochs`` epochs); the test accuracy of the result."""
    import copy
    cfg = copy.deepcopy(cfg)
    if epochs is not None:
        cfg.train_cfg.max_epochs = epochs
        for s in cfg.param_scheduler:
            s.T_max, s.end = epochs, epochs
    train = data['train']
    counts = class_counts(train, int(data['meta']['num_classes']))
    t0 = time.perf_counter()
    model = build_stage2_model(cfg, data['head_state'], counts, seed=0)
    train_on_features(cfg, model, train['feats'], train['labels'], seed=0,
                      logits=train['logits'] if cached_logits else None)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        test = data['test']
        pred = model(dict(feats=test['feats'], logits=test['logits'])).argmax(1)
    return dict(seconds=seconds, epochs=int(cfg.train_cfg.max_epochs),
                cached_logits=any(model._fast),
                steps=int(cfg.train_cfg.max_epochs) * math.ceil(
                    len(train['labels']) / cfg.train_dataloader.batch_size),
                test_top1=float((pred == test['labels']).float().mean() * 100))
