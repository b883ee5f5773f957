"""The shipped configs the benchmarks use, in one table.

Names are relative to the ``configs/`` folder of the repository (installed:
``disalign_mm/.mim/configs``); rename a config here and every benchmark
follows.
"""
import os.path as osp
from typing import Dict

from ..mim_scope import package_root

CONFIGS: Dict[str, str] = {
    # Fashion-MNIST-LT: stage 1 and the second stages of the benchmark
    'fmnist_stage1': 'fashion_mnist_lt/resnet-s_1xb128-coslr-8e_fmnist-lt.py',
    'fmnist_disalign': 'fashion_mnist_lt/disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py',
    'fmnist_crt': 'fashion_mnist_lt/crt_resnet-s_1xb128-coslr-6e_fmnist-lt.py',
    'fmnist_lws': 'fashion_mnist_lt/lws_resnet-s_1xb128-coslr-6e_fmnist-lt.py',
    'fmnist_taunorm': 'fashion_mnist_lt/tau-norm_resnet-s_fmnist-lt.py',
    'fmnist_logitadj': 'fashion_mnist_lt/logit-adjust_resnet-s_fmnist-lt.py',
    # Fashion-MNIST-LT with a tiny ViT: stage 1 and DisAlign
    'fmnist_vit_stage1': 'fashion_mnist_lt/vit-tiny-p4_1xb128-coslr-20e_fmnist-lt.py',
    'fmnist_vit_disalign': 'fashion_mnist_lt/disalign_vit-tiny-p4_1xb128-coslr-6e_fmnist-lt.py',
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
