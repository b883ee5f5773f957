"""A second stage chosen from cached features, as a checkpoint of the whole
model: the stage-1 weights plus the trained calibration (or classifier),
which ``mim test``, ``mim train --resume``-free evaluation and
mmpretrain's inference API load directly with the stage-2 config."""
import os
import os.path as osp
import tempfile
from typing import Dict, Optional

import torch
from torch import nn

from ..engine.build import build_model
from ..engine.utils import checkpoint_weights
from .features import file_sha256


def stage2_state_dict(stage1_checkpoint: str, head: nn.Module) -> Dict[str, torch.Tensor]:
    """The stage-1 checkpoint's weights with every ``head.*`` entry replaced
    by ``head``'s state (the trained second stage)."""
    from mmengine.runner.checkpoint import _load_checkpoint

    state = checkpoint_weights(_load_checkpoint(stage1_checkpoint, map_location='cpu'))
    out = {k: v for k, v in state.items() if not k.startswith('head.')}
    out.update({f'head.{k}': v.detach().cpu().clone() for k, v in head.state_dict().items()})
    return out


def check_loads(cfg, state: Dict[str, torch.Tensor], where: str,
                runner_dir: Optional[str] = None) -> None:
    """Build the model of ``cfg`` as the host's Runner does
    (:func:`~disalign_mm.engine.build.build_model`, its log in
    ``runner_dir``, a temporary directory by default) and load ``state``
    strictly: the exported checkpoint and config must fit each other
    exactly."""
    if runner_dir is None:
        with tempfile.TemporaryDirectory(prefix='disalign_mm_export_') as tmp:
            return check_loads(cfg, state, where, tmp)
    model = build_model(cfg, runner_dir)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise RuntimeError(f'{where}: the exported checkpoint does not fit its config: missing '
                           f'{missing[:5]}, unexpected {extra[:5]}')
    model.load_state_dict(state, strict=True)


def save_stage2_checkpoint(path: str, cfg, stage1_checkpoint: str, head: nn.Module,
                           classes: Optional[list], meta: Optional[dict] = None,
                           stage1_sha256: Optional[str] = None,
                           runner_dir: Optional[str] = None) -> str:
    """Write the checkpoint of the second stage ``head`` on the stage-1 model
    (an mmengine checkpoint: ``meta`` + ``state_dict``), after checking that
    the stage-2 config ``cfg`` loads it strictly. ``meta['dataset_meta']``
    carries the class names (mmpretrain's inferencer shows them);
    ``stage1_sha256`` (computed when not given) records the stage 1;
    ``runner_dir``: the work directory of the Runner that builds the model
    for the check (default: ``runner`` beside ``path``)."""
    state = stage2_state_dict(stage1_checkpoint, head)
    check_loads(cfg, state, path, runner_dir or osp.join(osp.dirname(osp.abspath(path)),
                                                         'runner'))
    info = dict(meta or {}, stage1_checkpoint=osp.abspath(stage1_checkpoint),
                stage1_sha256=stage1_sha256 or file_sha256(stage1_checkpoint))
    ckpt = dict(meta=dict(disalign_mm=info), state_dict=state)
    if classes:
        ckpt['meta']['dataset_meta'] = dict(classes=list(classes))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save(ckpt, path + '.tmp')
    os.replace(path + '.tmp', path)
    return path
