"""The frozen stage-1 model's features, computed once and cached.

A second stage on a frozen representation only needs, per image, the input
of the classifier (the head's ``pre_logits`` output) and the label, plus the
stage-1 head's weights. :func:`extract_features` computes them for any
mmpretrain classifier config and named data sets; :func:`cached_features`
keeps them in one file, keyed on the checkpoint, the model config and the
data sets, written atomically (an interrupted run leaves no half-written
cache) and loaded weights-only.

The features dict: ``{split: {'feats': (N, C) float32, 'labels': (N,)
int64}, ..., 'head_state': {name: tensor}}`` (``head_state`` holds the
stage-1 ``head.*`` weights without the ``head.`` prefix).
"""
import copy
import json
import os
import os.path as osp
import time
from typing import Callable, Dict, Optional

import torch

Features = Dict[str, dict]


def without_augmentation(dataset_cfg: dict) -> dict:
    """A copy of a data set config whose pipeline only packs the inputs
    (no random augmentation, no resizing)."""
    return dict(copy.deepcopy(dataset_cfg), pipeline=[dict(type='PackInputs')])


@torch.no_grad()
def extract_features(cfg, checkpoint: str, datasets: Dict[str, dict],
                     batch_size: int = 500) -> Features:
    """Features of the frozen stage-1 model of ``cfg`` (an mmpretrain
    classifier) loaded from ``checkpoint``, in eval mode, for every data set
    config of ``datasets`` (name -> config), and the stage-1 head's state."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import DATASETS, MODELS

    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
        sets = {split: DATASETS.build(ds_cfg) for split, ds_cfg in datasets.items()}
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    model.eval()
    out: Features = {}
    for split, ds in sets.items():
        feats, labels = [], []
        for i in range(0, len(ds), batch_size):
            batch = pseudo_collate([ds[j] for j in range(i, min(i + batch_size, len(ds)))])
            data = model.data_preprocessor(batch, False)
            pre = model.head.pre_logits(model.extract_feat(data['inputs']))
            feats.append(pre.float())
            labels.append(torch.cat([d.gt_label for d in data['data_samples']]))
        out[split] = dict(feats=torch.cat(feats), labels=torch.cat(labels).long())
    out['head_state'] = {k[len('head.'):]: v.clone() for k, v in model.state_dict().items()
                         if k.startswith('head.')}
    return out


def cache_key(cfg, checkpoint: str, datasets: Dict[str, dict]) -> str:
    """What the cached features depend on: the checkpoint file (path,
    modification time), the model config and the data set configs."""
    key = dict(ckpt=osp.abspath(checkpoint), mtime=osp.getmtime(checkpoint),
               model=str(cfg.model), splits={k: str(v) for k, v in datasets.items()})
    return json.dumps(key, sort_keys=True)


def cached_features(path: str,
                    cfg,
                    checkpoint: str,
                    datasets: Dict[str, dict],
                    recompute: bool = False,
                    name: str = '',
                    log: Callable[[str], None] = print) -> Features:
    """:func:`extract_features`, stored in ``path``; reused when its key
    (:func:`cache_key`) matches, unless ``recompute``. ``name`` prefixes the
    log lines."""
    key = cache_key(cfg, checkpoint, datasets)
    prefix = f'{name}: ' if name else ''
    if osp.isfile(path) and not recompute:
        data = torch.load(path, map_location='cpu', weights_only=True)
        if data.get('key') == key:
            log(f'{prefix}reusing features {path}')
            return data['features']
    t0 = time.time()
    feats = extract_features(cfg, checkpoint, datasets)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save(dict(key=key, features=feats), path + '.tmp')
    os.replace(path + '.tmp', path)  # an interrupted run leaves no half-written cache
    sizes = ', '.join(f'{k} {v["feats"].shape[0]}' for k, v in feats.items() if k != 'head_state')
    log(f'{prefix}features of the frozen stage-1 model ({sizes}) in {time.time() - t0:.0f} s')
    return feats


def class_counts(features: Features, split: str = 'train',
                 num_classes: Optional[int] = None) -> torch.Tensor:
    """Images per class of a split."""
    return torch.bincount(features[split]['labels'], minlength=num_classes or 0)
