"""Stage-2 freezing: only the calibration parameters train, the rest is a
fixed representation (frozen weights *and* frozen BatchNorm statistics)."""
import re
from typing import List, Optional, Sequence

from mmengine.dist import broadcast
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

from .freeze import FrozenStage2, calibration_param_names, freeze_stage2, select_trainable
from .utils import unwrap_model


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

    ``reinit`` serves second stages that learn a classifier afresh on the
    frozen representation (Decouple's cRT): after the stage-1 checkpoint was
    loaded, the matched modules get their ``reset_parameters()`` (then rank
    0's values are broadcast, so every rank starts equal). A stage 2 that resumes its
    own checkpoint is not re-initialised again: the checkpoints this hook
    saves record the re-initialised modules (``meta['disalign_mm_reinit']``),
    and resuming a checkpoint without that record (a stage-1 one) with
    ``reinit`` is an error.

    Args:
        trainable (Sequence[str], optional): Regular expressions
            (``re.search`` on the full parameter name); the parameters that
            match stay trainable. Defaults to None: the parameters of every
            :class:`~disalign_mm.core.DisAlignCalibration` module.
        require_checkpoint (bool): Fail when training starts without a
            loaded checkpoint. Defaults to True.
        log_names (int): At most this many trainable names are logged.
            Defaults to 20.
        reinit (Sequence[str], optional): Regular expressions matched with
            ``re.fullmatch`` against module names (e.g. ``['head\\.fc']``);
            every matched module is re-initialised with its
            ``reset_parameters()`` before training starts, after the
            checkpoint was loaded. A pattern that matches no module, or a
            matched module without ``reset_parameters()``, is an error.
            Defaults to None: nothing is re-initialised.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 trainable: Optional[Sequence[str]] = None,
                 require_checkpoint: bool = True,
                 log_names: int = 20,
                 reinit: Optional[Sequence[str]] = None) -> None:
        if isinstance(trainable, str):
            trainable = [trainable]
        self.trainable = None if trainable is None else list(trainable)
        self.require_checkpoint = require_checkpoint
        self.log_names = log_names
        if isinstance(reinit, str):
            reinit = [reinit]
        self.reinit = None if reinit is None else list(reinit)
        self._reinit_pats = [re.compile(p) for p in self.reinit or []]
        self._frozen: Optional[FrozenStage2] = None
        self._loaded_meta: Optional[dict] = None

    def select_trainable(self, model: nn.Module) -> List[str]:
        """Names of the parameters this hook leaves trainable in ``model``
        (see :func:`~disalign_mm.engine.freeze.select_trainable`)."""
        return select_trainable(model, self.trainable)

    def before_run(self, runner) -> None:
        model = unwrap_model(runner.model)
        self._frozen = freeze_stage2(model, self.trainable)
        runner.logger.info(f'DisAlignFreezeHook: {self._frozen.summary(self.log_names)}')
        self._check_resume(runner, set(self._frozen.trainable))

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
        if self._reinit_pats:
            self._reinit(runner)
        self._set_eval()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
        self._loaded_meta = meta if isinstance(meta, dict) else {}

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._reinit_pats:
            checkpoint.setdefault('meta', {})['disalign_mm_reinit'] = list(self.reinit)

    def reinit_modules(self, model: nn.Module) -> List[str]:
        """Names of the modules ``reinit`` matches in ``model``; an error
        for a pattern that matches none or a module without
        ``reset_parameters()``."""
        named = [(n, m) for n, m in model.named_modules() if n]
        chosen = []
        for pat, src in zip(self._reinit_pats, self.reinit or []):
            hits = [n for n, _ in named if pat.fullmatch(n)]
            if not hits:
                raise RuntimeError(
                    f'DisAlignFreezeHook: reinit pattern {src!r} matches no module name '
                    f'(re.fullmatch); e.g. the model has {[n for n, _ in named][-8:]}')
            chosen += [n for n in hits if n not in chosen]
        mods = dict(named)
        bad = [n for n in chosen if not callable(getattr(mods[n], 'reset_parameters', None))]
        if bad:
            raise RuntimeError(
                f'DisAlignFreezeHook: reinit matched {bad} '
                f'({", ".join(type(mods[n]).__name__ for n in bad)}), which have no '
                'reset_parameters(); match the layers themselves (e.g. r"head\\.fc"), '
                'not their containers')
        return chosen

    def _reinit(self, runner) -> None:
        model = unwrap_model(runner.model)
        chosen = self.reinit_modules(model)
        resumed = getattr(runner, '_resume', False) and getattr(runner, '_has_loaded', False)
        if resumed:
            if 'disalign_mm_reinit' not in (self._loaded_meta or {}):
                raise RuntimeError(
                    'resume=True with reinit: the resumed checkpoint was not saved by a '
                    'stage 2 that re-initialised its classifier (it is a stage-1 '
                    'checkpoint?); resuming it would restore the stage-1 optimizer and '
                    'counters. To start stage 2 from it set resume=False (keep '
                    'load_from); to continue an interrupted stage 2, resume from one of '
                    'its checkpoints.')
            runner.logger.info(
                f'DisAlignFreezeHook: resumed a stage-2 checkpoint, {chosen} keep their '
                'trained values (re-initialised when this stage 2 started)')
            return
        mods = dict(model.named_modules())
        for name in chosen:
            mods[name].reset_parameters()
            for t in list(mods[name].parameters()) + list(mods[name].buffers()):
                broadcast(t.data, src=0)
        runner.logger.info(
            f'DisAlignFreezeHook: re-initialised {chosen} with reset_parameters() '
            f'(reinit={self.reinit}), after loading the checkpoint')

    def _set_eval(self) -> None:
        if self._frozen is not None:
            self._frozen.set_eval()

    def before_train_epoch(self, runner) -> None:
        self._set_eval()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._set_eval()
