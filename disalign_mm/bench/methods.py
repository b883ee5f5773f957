"""A second stage as a config: a shipped config plus the variations a
benchmark row makes of it (another head, other trainable parameters,
another sampler), and its hyper-parameters as config keys.

Every trial is therefore a complete config: the cached path trains it
(:mod:`disalign_mm.bench.stage2`) and ``mim train`` could run it as is.
"""
import copy
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .configs import load_config

# hyper-parameter name -> the config key it sets
HYPER_PARAMETERS: Dict[str, str] = dict(
    lr='optim_wrapper.optimizer.lr', rho='model.head.loss.rho', tau='model.head.tau')


@dataclass
class Method:
    """A second stage of a benchmark.

    Attributes:
        key (str): Short name (results, ``--methods``).
        name (str): Row title.
        config (str): Path of its config.
        group (str): The table it is reported in.
        grid (dict): Hyper-parameter values searched on the validation
            split (names of :data:`HYPER_PARAMETERS`).
        head (dict): Merged into ``model.head`` (or replacing it, with
            ``replace_head``).
        replace_head (bool): ``model.head`` becomes ``head`` plus the
            config's ``num_classes`` and ``in_channels``.
        trainable (list[str], optional): Replaces the ``trainable`` of the
            config's ``DisAlignFreezeHook``.
        sampler (dict, optional): Replaces ``train_dataloader.sampler``.
        train_set (str): The cached split it trains on.
        same_as (str, optional): The row reports another method's run.
        calibration_stats (bool): Record the learned calibration (and the
            confidence on the test set) for the plots.
    """
    key: str
    name: str
    config: str
    group: str
    grid: Dict[str, Sequence[float]] = field(default_factory=dict)
    head: dict = field(default_factory=dict)
    replace_head: bool = False
    trainable: Optional[List[str]] = None
    sampler: Optional[dict] = None
    train_set: str = 'train'
    same_as: Optional[str] = None
    calibration_stats: bool = False


def merge(base: dict, extra: dict) -> dict:
    """``extra`` merged into a copy of ``base``, recursively (dicts only)."""
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(
            out.get(k), dict) else copy.deepcopy(v)
    return out


def method_config(method: Method, options: Optional[Dict[str, object]] = None):
    """The method's config: its file with ``options`` (``--cfg-options``
    style) and the method's variations applied."""
    cfg = load_config(method.config, options or {})
    head = cfg.model.head.to_dict()
    if method.replace_head:
        head = dict(copy.deepcopy(method.head), num_classes=head['num_classes'],
                    in_channels=head['in_channels'])
    else:
        head = merge(head, method.head)
    cfg.model.head = head
    if method.trainable is not None:
        hooks = [h for h in cfg.custom_hooks if h.get('type') == 'DisAlignFreezeHook']
        if not hooks:
            raise ValueError(f'{method.key}: trainable is set but {method.config} has no '
                             'DisAlignFreezeHook')
        hooks[0].trainable = list(method.trainable)
    if method.sampler is not None:
        cfg.train_dataloader.sampler = copy.deepcopy(method.sampler)
    return cfg


def trial_config(cfg, hp: Dict[str, float]):
    """A copy of ``cfg`` with the hyper-parameters ``hp`` set."""
    unknown = sorted(set(hp) - set(HYPER_PARAMETERS))
    if unknown:
        raise KeyError(f'unknown hyper-parameters {unknown}; known: {sorted(HYPER_PARAMETERS)}')
    cfg = copy.deepcopy(cfg)
    cfg.merge_from_dict({HYPER_PARAMETERS[k]: v for k, v in hp.items()})
    return cfg
