"""Building a config's model and data outside ``mim train``/``mim test``,
exactly as they build them.

Whatever the plugin computes outside a training or test run (the
second-stage tool's cached features, its exports, the benchmarks) must see
the model the host sees. mmengine's ``Runner`` does more than
``MODELS.build(cfg.model)``: it merges a config's top-level
``data_preprocessor`` into the model (mmpretrain's data set bases, and so
most real configs, put it there), sets the config's ``default_scope``,
builds a custom runner when the config names ``runner_type``, reverts
SyncBN to BatchNorm outside distributed runs, and builds the hooks that may
act on the model at test time (e.g. ``EMAHook``). :func:`build_runner`
therefore *is* mmengine's code: ``Runner.from_cfg`` (or ``RUNNERS.build``)
of the config, in a work directory of the caller's, with nothing loaded;
:func:`build_model` is its model. A future mmengine change to how a Runner
builds its model reaches the plugin unchanged.

A config the host cannot build (an unknown ``type``, a missing argument)
ends in :class:`ConfigBuildError`, one line naming the config key and the
registry, instead of mmengine's traceback.
"""
import copy
import os.path as osp
import re
import uuid
from typing import Any, Iterator, List, Optional, Tuple

from torch import nn


class ConfigBuildError(ValueError):
    """The host could not build a part of the config (see the message)."""


def _config_paths(obj: Any, prefix: str = '') -> Iterator[Tuple[str, dict]]:
    """``(dotted.key, dict)`` for every dict in a config, depth first."""
    if hasattr(obj, 'to_dict'):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        yield prefix, obj
        for k, v in obj.items():
            yield from _config_paths(v, f'{prefix}.{k}' if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _config_paths(v, f'{prefix}[{i}]')


def keys_with_type(cfg, type_name: str) -> List[str]:
    """The config keys whose ``type`` is ``type_name`` (for error messages)."""
    return [path or '(the config)' for path, d in _config_paths(cfg)
            if isinstance(d, dict) and str(d.get('type', '')).split('.')[-1] ==
            type_name.split('.')[-1]]


def explain_build_error(err: Exception, cfg, what: str) -> ConfigBuildError:
    """mmengine's build errors as one line naming the key and the registry.

    ``KeyError: 'Foo is not in the mmpretrain::model registry ...'`` becomes
    ``the config's model.data_preprocessor has type='Foo', which is not in
    the mmpretrain::model registry ...``; other errors keep their message,
    prefixed with what was being built."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    m = re.search(r'(\S+) is not in the (\S+) registry', text)
    if m:
        name, registry = m.group(1).strip('`\'"'), m.group(2)
        keys = keys_with_type(cfg, name)
        where = ', '.join(keys) if keys else 'a key of the config'
        return ConfigBuildError(
            f"cannot build {what}: {where} has type='{name}', which is not in the {registry} "
            "registry. Fix the type name, or import the package that registers it "
            "(custom_imports=dict(imports=[...]) in the config).")
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return ConfigBuildError(f'cannot build {what}: {type(err).__name__}: {first}')


def build_runner(cfg, work_dir: str, **changes):
    """mmengine's Runner of ``cfg`` (``RUNNERS.build`` when the config names
    a ``runner_type``, else ``Runner.from_cfg``), in ``work_dir``, one
    process, with nothing loaded or resumed.

    Args:
        cfg (Config): The config (not modified).
        work_dir (str): The Runner's work directory (its log goes there).
        **changes: Top-level keys set on a copy of ``cfg`` before the Runner
            is built (e.g. ``load_from``, ``test_dataloader``).

    Raises:
        ConfigBuildError: The host cannot build the config's model or hooks.
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    cfg.load_from = None
    cfg.resume = False
    # mmengine keeps one logger, visualizer and message hub per experiment
    # name (config name + timestamp, to the second): two Runners of one
    # config within a second would share them, work dirs included
    # (mmdet's and mmseg's runtimes name their visualizer 'visualizer')
    name = cfg.get('experiment_name') or osp.splitext(osp.basename(cfg.filename or 'run'))[0]
    unique = uuid.uuid4().hex[:8]
    cfg.experiment_name = f'{name}_{unique}'
    if isinstance(cfg.get('visualizer'), dict) and cfg.visualizer.get('name'):
        cfg.visualizer.name = f'{cfg.visualizer.name}_{unique}'
    for k, v in changes.items():
        cfg[k] = v
    try:
        if 'runner_type' in cfg:
            return RUNNERS.build(cfg)
        return Runner.from_cfg(cfg)
    except (KeyError, TypeError) as e:
        raise explain_build_error(e, cfg, 'the model of the config') from e


def build_model(cfg, work_dir: str, **changes) -> nn.Module:
    """The model of ``cfg`` as ``mim train``/``mim test`` build it (the model
    of :func:`build_runner`, unwrapped), randomly initialised as the Runner
    leaves it (seeded by the config's ``randomness``, or ``changes``), on
    the device the Runner chose."""
    from mmengine.model import is_model_wrapper
    runner = build_runner(cfg, work_dir, **changes)
    model = runner.model
    return model.module if is_model_wrapper(model) else model


def data_preprocessor_of(model: nn.Module) -> Optional[dict]:
    """``type``, ``mean``, ``std``, ``to_rgb`` of a model's data
    preprocessor, for comparing two ways of building a model."""
    pre = getattr(model, 'data_preprocessor', None)
    if pre is None:
        return None
    out: dict = dict(type=type(pre).__name__)
    for name in ('mean', 'std'):
        v = getattr(pre, name, None)
        out[name] = None if v is None else [round(float(x), 6) for x in v.flatten()]
    out['to_rgb'] = bool(getattr(pre, 'to_rgb', getattr(pre, '_channel_conversion', False)))
    return out
