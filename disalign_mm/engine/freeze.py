"""Stage-2 freezing as plain functions.

:func:`freeze_stage2` is the one implementation: :class:`DisAlignFreezeHook`
calls it in a Runner, the benchmark tools call it on a bare model.
:func:`check_stage1_fit` checks that a checkpoint provides everything that
is frozen; :func:`reinitialize` serves second stages that learn a classifier
afresh (cRT).
"""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..core import DisAlignCalibration
from .utils import misfit


def calibration_param_names(model: nn.Module) -> List[str]:
    """Names of the parameters of every :class:`DisAlignCalibration`."""
    names = []
    for mod_name, mod in model.named_modules():
        if isinstance(mod, DisAlignCalibration):
            prefix = f'{mod_name}.' if mod_name else ''
            names += [prefix + n for n, _ in mod.named_parameters()]
    return names


def calibration_state_names(model: nn.Module) -> List[str]:
    """State-dict keys of every :class:`DisAlignCalibration` (its parameters
    and its saved buffers, e.g. the feature statistics): what a stage-2
    model adds to its stage-1 model."""
    prefixes = tuple(f'{n}.' for n, m in model.named_modules()
                     if isinstance(m, DisAlignCalibration))
    return [k for k in model.state_dict() if prefixes and k.startswith(prefixes)]


def select_trainable(model: nn.Module,
                     trainable: Optional[Sequence[str]] = None,
                     allow_all: bool = False) -> List[str]:
    """Names of the parameters that stay trainable in stage 2.

    Args:
        model (nn.Module): The (unwrapped) model.
        trainable (Sequence[str], optional): Regular expressions
            (``re.search`` on the full parameter name). Defaults to None: the
            parameters of every :class:`~disalign_mm.core.DisAlignCalibration`.
        allow_all (bool): Accept that every parameter trains: a model that is
            only the stage-2 part (a head over cached features, cRT's
            classifier), whose frozen representation is elsewhere. Defaults to
            False: for a whole model that means nothing is frozen, an error.

    Raises:
        RuntimeError: Nothing would train, or everything would (unless
            ``allow_all``).
    """
    if isinstance(trainable, str):
        trainable = [trainable]
    names = [n for n, _ in model.named_parameters()]
    if trainable is None:
        chosen = calibration_param_names(model)
        if not chosen:
            raise RuntimeError(
                'stage 2: the model has no DisAlign calibration module, so nothing '
                'would train. Use a DisAlign head in the stage-2 config, or pass '
                'trainable=[regex].')
    else:
        pats = [re.compile(p) for p in trainable]
        chosen = [n for n in names if any(p.search(n) for p in pats)]
        if not chosen:
            raise RuntimeError(f'stage 2: no parameter name matches trainable='
                               f'{list(trainable)}; e.g. the model has {names[:5]}')
    if len(chosen) == len(names) and not allow_all:
        raise RuntimeError(
            'stage 2: every parameter of the model would train, so nothing would be '
            'frozen; stage 2 trains the calibration only. Check the trainable patterns.')
    return chosen


@dataclass
class FrozenStage2:
    """What :func:`freeze_stage2` did.

    Attributes:
        trainable (list[str]): Parameters left trainable.
        frozen_modules (list[str]): The top-most modules whose whole sub-tree
            is frozen; :meth:`set_eval` keeps them in eval mode.
        num_trainable (int): Values (not tensors) that train.
        num_total (int): Values of the whole model.
    """
    trainable: List[str]
    frozen_modules: List[str]
    num_trainable: int
    num_total: int
    _modules: List[nn.Module] = field(default_factory=list, repr=False)

    def set_eval(self) -> None:
        """Put the frozen modules in eval mode (BatchNorm statistics and
        dropout fixed). Call it after every ``model.train()``."""
        for m in self._modules:
            m.eval()

    def summary(self, max_names: int = 20) -> str:
        shown = sorted(self.trainable)[:max_names]
        more = len(self.trainable) - len(shown)
        pct = 100 * self.num_trainable / max(self.num_total, 1)
        return (f'{len(self.trainable)} parameter tensors ({self.num_trainable:,} of '
                f'{self.num_total:,} values, {pct:.3g}%) train; the rest is frozen, in '
                f'eval mode. Trainable: {shown}' + (f' and {more} more' if more > 0 else ''))


def freeze_stage2(model: nn.Module,
                  trainable: Optional[Sequence[str]] = None,
                  allow_all: bool = False) -> FrozenStage2:
    """Freeze ``model`` for stage 2: ``requires_grad=False`` on every parameter
    :func:`select_trainable` does not choose, and eval mode on every module
    whose sub-tree has nothing trainable (so BatchNorm statistics and dropout
    stay fixed: the stage-1 representation really is frozen).

    ``allow_all``: see :func:`select_trainable`.

    Returns:
        FrozenStage2: what was frozen; call its :meth:`~FrozenStage2.set_eval`
        after each ``model.train()``.
    """
    chosen = set(select_trainable(model, trainable, allow_all))
    n_train = n_total = 0
    for name, p in model.named_parameters():
        p.requires_grad_(name in chosen)
        n_total += p.numel()
        n_train += p.numel() if name in chosen else 0
    frozen = {
        n: m for n, m in model.named_modules()
        if not any(p.requires_grad for p in m.parameters())
    }
    top = [n for n in frozen if n and n.rpartition('.')[0] not in frozen]
    result = FrozenStage2(sorted(chosen), top, n_train, n_total, [frozen[n] for n in top])
    result.set_eval()
    return result


def reinit_module_names(model: nn.Module, patterns: Sequence[str]) -> List[str]:
    """Names of the modules ``patterns`` (``re.fullmatch`` on module names)
    select for re-initialisation (cRT's fresh classifier).

    Raises:
        RuntimeError: A pattern matches no module, or a matched module has no
            ``reset_parameters()``.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    named = [(n, m) for n, m in model.named_modules() if n]
    chosen: List[str] = []
    for src in patterns:
        pat = re.compile(src)
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


def reinitialize(model: nn.Module, names: Sequence[str]) -> None:
    """Call ``reset_parameters()`` of the named modules of ``model``."""
    mods = dict(model.named_modules())
    for name in names:
        mods[name].reset_parameters()


def check_stage1_fit(model: nn.Module, state: Dict[str, torch.Tensor],
                     trainable: Sequence[str]) -> Tuple[int, List[str]]:
    """Check that a checkpoint provides every frozen parameter and buffer of
    ``model`` with its shape.

    The only entries of the model a checkpoint may lack are the DisAlign
    calibrations' and the trainable parameters (a re-initialised classifier).

    Returns:
        tuple[int, list[str]]: the number of frozen entries checked, and the
        checkpoint keys the model does not use (deliberately dropped modules,
        e.g. an auxiliary head), for the log.

    Raises:
        RuntimeError: Naming the first missing keys, or the first keys whose
            shapes differ with both shapes.
    """
    exempt = set(calibration_state_names(model)) | set(trainable)
    own = model.state_dict()
    problem = misfit(own, state, 'frozen entries', exempt)
    if problem:
        raise RuntimeError(
            'DisAlignFreezeHook: the loaded checkpoint does not fit the frozen stage-2 model: '
            + problem + '. Stage 2 would train on a partly random, frozen '
            'representation. Load the stage-1 checkpoint of this model (same backbone, '
            'neck, head and num_classes) as load_from.')
    frozen = [k for k in own if k not in exempt]
    return len(frozen), [k for k in state if k not in own]
