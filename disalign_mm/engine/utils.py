"""Small helpers shared by the hooks and tools of every host."""
import json
import os.path as osp
from typing import Dict, Iterable, List, Optional

import torch
from mmengine.model import is_model_wrapper
from torch import nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a DDP/FSDP wrapper (the model itself otherwise)."""
    return model.module if is_model_wrapper(model) else model


def unwrap_dataset(dataset):
    """The innermost data set under wrappers that keep it as ``.dataset``
    (``ClassBalancedDataset``, ``RepeatDataset``, ...)."""
    seen = set()
    while hasattr(dataset, 'dataset') and id(dataset) not in seen:
        seen.add(id(dataset))
        dataset = dataset.dataset
    return dataset


def checkpoint_weights(checkpoint) -> Dict[str, torch.Tensor]:
    """The model weights of a loaded checkpoint, keys as mmengine loads them
    (``state_dict`` or the checkpoint itself; a DDP ``module.`` prefix stripped)."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else {}
    return {(k[7:] if k.startswith('module.') else k): v
            for k, v in state.items() if isinstance(v, torch.Tensor)}


def misfit(own: Dict[str, torch.Tensor], state: Dict[str, torch.Tensor],
           what: str = 'entries', exempt: Iterable[str] = ()) -> Optional[str]:
    """How ``state`` (a checkpoint's weights) fails to provide every entry of
    ``own`` (a model's state dict) but ``exempt`` with its shape: the first
    missing keys and the first shape mismatches with both shapes, for an
    error message; None when it fits."""
    exempt = set(exempt)
    keys = [k for k in own if k not in exempt]
    missing = [k for k in keys if k not in state]
    mismatched = [k for k in keys if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    parts: List[str] = []
    if missing:
        parts.append(f'{len(missing)} {what} are missing from it, e.g. {missing[:5]}')
    if mismatched:
        shown = ', '.join(f'{k}: checkpoint {tuple(state[k].shape)} vs model '
                          f'{tuple(own[k].shape)}' for k in mismatched[:5])
        parts.append(f'{len(mismatched)} have another shape ({shown})')
    return '; '.join(parts) or None


def read_json(path: str, missing: str, what: str = ''):
    """The JSON in ``path``: FileNotFoundError(``missing``) when there is no
    such file, ValueError naming ``what`` + the path when it is not JSON."""
    if not osp.isfile(path):
        raise FileNotFoundError(missing)
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{what}{path!r} is not JSON: {e}') from e


def device_problem(device: str) -> Optional[str]:
    """Why ``device`` (``'cpu'``, ``'cuda'``, ``'cuda:N'``) cannot be used
    on this machine, in one line naming the fix; None when it can."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        return f'not a device: {device!r} ({e}); use cpu, cuda or cuda:N'
    if dev.type == 'cpu':
        return None
    if dev.type != 'cuda':
        return f'device {device!r}: disalign_mm runs on cpu or cuda; use --device cpu or cuda'
    if not torch.cuda.is_available():
        why = 'built without CUDA' if torch.version.cuda is None else \
            f'built for CUDA {torch.version.cuda}, but no NVIDIA driver or GPU was found'
        return (f'CUDA is not available on this machine (torch {torch.__version__}, {why}): '
                'use --device cpu')
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        return (f'device {device!r}: this machine has {count} CUDA device'
                f'{"s" if count > 1 else ""} (cuda:0 to cuda:{count - 1}); use one of them')
    return None


def check_device(device: str, exit_prefix: Optional[str] = None) -> str:
    """Check ``device`` before any work: the tools' ``--device``.

    Args:
        device (str): ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        exit_prefix (str, optional): When given, a problem ends the process
            (``SystemExit``) with this prefix and the one-line reason, as a
            command-line tool does. Defaults to None: raise ``ValueError``.

    Returns:
        str: ``device``, usable.
    """
    problem = device_problem(device)
    if problem is None:
        return device
    if exit_prefix is not None:
        raise SystemExit(f'{exit_prefix}{problem}')
    raise ValueError(problem)
