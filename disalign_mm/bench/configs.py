"""The shipped configs the benchmarks use, in one table.

Names are relative to the ``configs/`` folder of the repository (installed:
``disalign_mm/.mim/configs``); rename a config here and every benchmark
follows.
"""
import argparse
import os.path as osp
from typing import Dict, Optional

from ..mim_scope import package_root

CONFIGS: Dict[str, str] = {
    # Fashion-MNIST-LT: stage 1 and the second stages of the benchmark
    'fmnist_stage1': 'fashion_mnist_lt/resnet-s_1xb128-coslr-8e_fmnist-lt.py',
    'fmnist_disalign': 'fashion_mnist_lt/disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py',
    'fmnist_crt': 'fashion_mnist_lt/crt_resnet-s_1xb128-coslr-6e_fmnist-lt.py',
    'fmnist_lws': 'fashion_mnist_lt/lws_resnet-s_1xb128-coslr-6e_fmnist-lt.py',
    'fmnist_taunorm': 'fashion_mnist_lt/tau-norm_resnet-s_fmnist-lt.py',
    'fmnist_logitadj': 'fashion_mnist_lt/logit-adjust_resnet-s_fmnist-lt.py',
    # the stage-2 cost of each host (tools/benchmark/stage2_cost.py)
    'ade20k_fcn_stage1': 'ade20k/fcn_r50-d8_4xb4-160k_ade20k-512x512.py',
    'ade20k_fcn_disalign': 'ade20k/disalign_fcn_r50-d8_8xb4-8k_ade20k-512x512.py',
    'lvis_mask_rcnn_stage1': 'lvis_v1/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py',
    'lvis_mask_rcnn_disalign': 'lvis_v1/disalign_mask-rcnn_r50_fpn_ms-9k_lvis-v1.py',
}


def config_root() -> str:
    """The ``configs/`` folder: the repository's in a source tree, the
    package's ``.mim/configs`` once installed from a wheel."""
    repo = osp.dirname(package_root())
    if osp.isfile(osp.join(repo, 'setup.py')) and osp.isdir(osp.join(repo, 'configs')):
        return osp.join(repo, 'configs')
    return osp.join(package_root(), '.mim', 'configs')


def config_path(key: str) -> str:
    """Path of the config ``CONFIGS[key]``."""
    if key not in CONFIGS:
        raise KeyError(f'no benchmark config {key!r}; known: {sorted(CONFIGS)}')
    return osp.join(config_root(), CONFIGS[key])


def config_name(path: str) -> str:
    """``configs/<name>`` for a path under :func:`config_root` (what reports
    show), the path itself otherwise."""
    rel = osp.relpath(osp.abspath(path), config_root())
    return path if rel.startswith('..') else 'configs/' + rel.replace(osp.sep, '/')


def parse_options(options: Optional[Dict[str, object]]) -> Dict[str, object]:
    """``{'a.b': value}`` with every value parsed from its string form as
    ``--cfg-options key=value ...`` on a command line (mmengine's
    ``DictAction``) parses it."""
    from mmengine.config import DictAction
    if not options:
        return {}
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    return parser.parse_args(['--o'] + [f'{k}={v}' for k, v in options.items()]).o


def nested(dotted: Dict[str, object]) -> dict:
    """``{'a.b': v}`` as ``{'a': {'b': v}}`` (what a config file writes)."""
    from mmengine.config import Config
    cfg = Config()
    cfg.merge_from_dict(dict(dotted))
    return cfg.to_dict()


def load_config(path: str, options: Optional[Dict[str, object]] = None):
    """``Config.fromfile(path)`` with ``options`` merged exactly as
    ``--cfg-options key=value ...`` on a command line would be (values are
    parsed from their string form)."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(parse_options(options))
    return cfg
