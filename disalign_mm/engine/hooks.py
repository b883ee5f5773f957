"""Stage-2 freezing: only the calibration parameters train, the rest is a
fixed representation (frozen weights *and* frozen BatchNorm statistics)."""
import re
from typing import List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

from ..core import DisAlignCalibration


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def calibration_param_names(model: nn.Module) -> List[str]:
    """Names of the parameters of every :class:`DisAlignCalibration`."""
    names = []
    for mod_name, mod in model.named_modules():
        if isinstance(mod, DisAlignCalibration):
            prefix = f'{mod_name}.' if mod_name else ''
            names += [prefix + n for n, _ in mod.named_parameters()]
    return names


@HOOKS.register_module()
class DisAlignFreezeHook(Hook):
    """Freeze everything but the DisAlign calibration for stage 2.

    Before the run, every parameter that is not trainable gets
    ``requires_grad=False``. Every module whose sub-tree holds no trainable
    parameter is put in eval mode before each training iteration (the train
    loop calls ``model.train()`` at every epoch or iteration), so BatchNorm
    statistics and dropout stay fixed: the stage-1 representation really is
    frozen.

    Stage 2 only makes sense from a stage-1 model, so the run fails when no
    checkpoint was loaded (``load_from``), and when ``resume=True`` would
    resume a checkpoint that has no calibration parameters (a stage-1
    checkpoint: its optimizer state and iteration counter are not stage 2's).

    With DDP, parameters frozen after the wrapper was built need
    ``model_wrapper_cfg=dict(type='MMDistributedDataParallel',
    find_unused_parameters=True)``.

    Args:
        trainable (Sequence[str], optional): Regular expressions
            (``re.search`` on the full parameter name); the parameters that
            match stay trainable. Defaults to None: the parameters of every
            :class:`~disalign_mm.core.DisAlignCalibration` module.
        require_checkpoint (bool): Fail when training starts without a
            loaded checkpoint. Defaults to True.
        log_names (int): At most this many trainable names are logged.
            Defaults to 20.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 trainable: Optional[Sequence[str]] = None,
                 require_checkpoint: bool = True,
                 log_names: int = 20) -> None:
        if isinstance(trainable, str):
            trainable = [trainable]
        self.trainable = None if trainable is None else list(trainable)
        self.require_checkpoint = require_checkpoint
        self.log_names = log_names
        self._frozen_modules: List[nn.Module] = []

    def _select(self, model: nn.Module) -> List[str]:
        names = [n for n, _ in model.named_parameters()]
        if self.trainable is None:
            chosen = calibration_param_names(model)
            if not chosen:
                raise RuntimeError(
                    'DisAlignFreezeHook: the model has no DisAlign calibration '
                    'module, so nothing would train in stage 2. Use a DisAlign '
                    'head in the stage-2 config, or pass trainable=[regex].')
        else:
            pats = [re.compile(p) for p in self.trainable]
            chosen = [n for n in names if any(p.search(n) for p in pats)]
            if not chosen:
                raise RuntimeError(
                    f'DisAlignFreezeHook: no parameter name matches trainable='
                    f'{self.trainable}; e.g. the model has {names[:5]}')
        if len(chosen) == len(names):
            raise RuntimeError(
                'DisAlignFreezeHook: every parameter of the model would train, '
                'so nothing would be frozen; stage 2 trains the calibration '
                'only. Check the trainable patterns.')
        return chosen

    def before_run(self, runner) -> None:
        model = _unwrap(runner.model)
        chosen = set(self._select(model))
        n_train = n_total = 0
        for name, p in model.named_parameters():
            p.requires_grad_(name in chosen)
            n_total += p.numel()
            n_train += p.numel() if name in chosen else 0
        # the top-most modules whose sub-tree has nothing trainable
        frozen = {
            n: m for n, m in model.named_modules()
            if not any(p.requires_grad for p in m.parameters())
        }
        self._frozen_modules = [
            m for n, m in frozen.items() if n and n.rpartition('.')[0] not in frozen
        ]
        shown = sorted(chosen)[:self.log_names]
        more = len(chosen) - len(shown)
        runner.logger.info(
            f'DisAlignFreezeHook: {len(chosen)} parameter tensors '
            f'({n_train:,} of {n_total:,} values, {100 * n_train / n_total:.3g}%) '
            f'train; the rest is frozen, in eval mode. '
            f'Trainable: {shown}' + (f' and {more} more' if more > 0 else ''))
        self._check_resume(runner, chosen)

    def _check_resume(self, runner, chosen) -> None:
        load_from = getattr(runner, '_load_from', None)
        if not (getattr(runner, '_resume', False) and load_from):
            return
        ckpt = _load_checkpoint(load_from, map_location='cpu')
        state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else {}
        if not any(n in state for n in chosen):
            raise RuntimeError(
                f'resume=True with load_from={load_from!r}, which has no '
                'DisAlign calibration parameters: it is a stage-1 checkpoint, '
                'and resuming it would restore the stage-1 optimizer and '
                'iteration counter. To start stage 2 from it set resume=False '
                '(keep load_from); to continue an interrupted stage 2, resume '
                'from a stage-2 checkpoint (or --resume with no path).')

    def before_train(self, runner) -> None:
        if self.require_checkpoint and not getattr(runner, '_has_loaded', False):
            raise RuntimeError(
                'DisAlign stage 2 needs the stage-1 model: set load_from to the '
                'stage-1 checkpoint (e.g. --cfg-options load_from=work_dirs/'
                'stage1/epoch_90.pth). No checkpoint was loaded, so the frozen '
                'representation would be random.')
        self._set_eval()

    def _set_eval(self) -> None:
        for m in self._frozen_modules:
            m.eval()

    def before_train_epoch(self, runner) -> None:
        self._set_eval()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._set_eval()
