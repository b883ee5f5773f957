"""The Fashion-MNIST-LT benchmark as a use of
:func:`~disalign_mm.second_stage.select.select_second_stage`: its stage-1
options per seed, its validation split and balanced training set, the
balanced-data bound, the rows and tables of its report.

Everything data-set specific lives here; the second stages, their configs,
grids and the selection are the tool's (``tools/select_second_stage.py``).
"""
import os
import os.path as osp
import shutil
import subprocess
from typing import Callable, Dict, List, Optional

from ..second_stage.methods import CLASSIFIER
from ..second_stage.methods import GROUPS as METHOD_GROUPS
from ..second_stage.methods import LR_GRID, METHODS, Method, train_dataset
from .configs import config_path

TRAIN_IMAGES_PER_CLASS = 6000
#: where Debian's dataset-fashion-mnist puts the files (the configs' data_root)
FASHION_MNIST_ROOT = '/usr/share/datasets/fashion-mnist'
DEBIAN_PKG = 'dataset-fashion-mnist'
FILES = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
         't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
#: the stage-1 models the benchmark can start from (``--stage1``): the small
#: ResNet of the README's table and the tiny ViT (patch 4, 4 layers, width 64)
STAGE1S = {'resnet': config_path('fmnist_stage1'), 'vit': config_path('fmnist_vit_stage1')}
STAGE1 = STAGE1S['resnet']
#: the schedule of the shipped stage-2 configs (disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py)
STAGE2_EPOCHS = 6

#: the stage-1 model itself (a report row, not a second stage)
STAGE1_ROW = Method('stage1', 'Stage 1 (joint training, cross entropy)', 'main')
#: what the intro calls each stage-1 model
STAGE1_NAMES = {'resnet': 'a small ResNet', 'vit': 'a tiny ViT (patch 4, 4 layers, width 64)'}
#: Sec. 3.1: the classifier re-trained (as cRT) on the balanced training set
BOUND = Method('bound', 'Balanced-data bound (classifier re-trained on balanced data)', 'bound',
               dict(lr=LR_GRID), head='stage1', trainable=CLASSIFIER, reinit=CLASSIFIER,
               sampler=dict(type='DefaultSampler', shuffle=True),
               train_set='balanced')
#: the report's rows, in order
ROWS: List[Method] = [STAGE1_ROW] + list(METHODS) + [BOUND]
GROUPS = dict(METHOD_GROUPS, main='DisAlign and its peers (one stage-1 model per seed)',
              bound='Upper bound (Sec. 3.1)')


def stage1_options(seed: int, n_max: int, imb_factor: float, val_per_class: int,
                   cfg_options: Optional[Dict[str, object]] = None) -> Dict[str, object]:
    """``--cfg-options`` of the stage-1 run of ``seed``, and the data of every
    split (the long-tailed subset is a function of these values): seed 0
    keeps the label order, other seeds permute which classes are rare.
    ``cfg_options`` (``{key: value}``, as mmengine's ``DictAction`` gives
    them) come last."""
    opts: Dict[str, object] = {}
    lt = dict(n_max=n_max, imb_factor=imb_factor, permute_classes=seed != 0, seed=seed,
              val_per_class=val_per_class)
    for split in ('train', 'val', 'test'):
        for k, v in lt.items():
            opts[f'{split}_dataloader.dataset.{k}'] = v
    opts['randomness.seed'] = seed
    opts.update(cfg_options or {})
    return opts


def extra_splits(cfg) -> Dict[str, dict]:
    """The validation split (``split='val'``: held-out training images,
    balanced) and the balanced training set of the bound (every class with
    ``n_max`` images, the validation images still held out), read as the
    training set is (no augmentation)."""
    train = train_dataset(cfg)
    return dict(val=dict(train, split='val'), balanced=dict(train, imb_factor=1.0))


#: the groups the README shows (the ablations and the bound are in
#: results.md, which docs/benchmark.md includes)
README_GROUPS = ('main', )


def readme_markdown(summary: Dict[str, dict], meta: dict) -> str:
    """The README's table: :data:`README_GROUPS` of results.md."""
    from .report import markdown
    return markdown(summary, {g: GROUPS[g] for g in README_GROUPS}, intro(meta), meta['command'])


def intro(meta: dict) -> str:
    """The paragraph above the tables."""
    seeds = meta['seeds']
    stage1 = meta.get('stage1', 'resnet')
    model = ''
    if stage1 != 'resnet' and meta.get('stage1_config'):
        model = f', stage 1 {STAGE1_NAMES[stage1]} ({meta["stage1_config"]})'
    return (
        f'Fashion-MNIST-LT (imbalance factor {meta["imb_factor"]:g}){model}, top-1 accuracy (%) '
        f'on the balanced test set, mean ± std over {len(seeds)} seeds '
        f'({", ".join(map(str, seeds))}; seed 0 keeps the label order, the others permute '
        'which classes are rare). '
        f'Groups by training images: Many > {meta["many_thr"]:g}, Few < {meta["few_thr"]:g}. '
        'Hyper-parameters chosen on the validation split '
        f'({meta["val_per_class"]} held-out training images per class); chosen values per seed.')


def ensure_fashion_mnist(root: str = FASHION_MNIST_ROOT,
                         log: Callable[[str], None] = print) -> None:
    """Make sure the Fashion-MNIST files are in ``root``: install Debian's
    ``dataset-fashion-mnist`` with apt-get when they are missing from its
    folder and this runs as root.

    Raises:
        RuntimeError: The files are missing and cannot be installed here (the
            message says how to install them or where to point the configs).
    """
    def present() -> bool:
        return all(osp.isfile(osp.join(root, f)) for f in FILES)

    if present():
        log(f'Fashion-MNIST found in {root}')
        return
    howto = (f'Fashion-MNIST is missing from {root}. Install it with:\n'
             f'    sudo apt-get update && sudo apt-get install -y {DEBIAN_PKG}\n'
             f'(or put {", ".join(FILES)} in a directory and pass '
             '--cfg-options train_dataloader.dataset.data_root=DIR '
             'val_dataloader.dataset.data_root=DIR test_dataloader.dataset.data_root=DIR)')
    if root != FASHION_MNIST_ROOT:
        raise RuntimeError(howto)
    apt = shutil.which('apt-get')
    if apt is None or os.geteuid() != 0:
        why = 'apt-get is not available' if apt is None else 'not running as root'
        raise RuntimeError(f'({why}, so it cannot be installed here) {howto}')
    log(f'installing the Debian package {DEBIAN_PKG} (apt-get update && install)')
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    for cmd in ([apt, 'update'], [apt, 'install', '-y', DEBIAN_PKG]):
        log(' '.join(cmd))
        if subprocess.call(cmd, env=env) != 0:
            raise RuntimeError(f'`{" ".join(cmd)}` failed. {howto}')
    if not present():
        raise RuntimeError(f'{DEBIAN_PKG} is installed but {root} lacks the files. {howto}')
