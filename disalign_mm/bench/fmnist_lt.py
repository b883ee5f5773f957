"""The Fashion-MNIST-LT benchmark as a use of
:func:`~disalign_mm.bench.second_stage.select_second_stage`: its stage-1
options per seed, its validation split and balanced training set, the
balanced-data bound, the rows and tables of its report.

Everything data-set specific lives here; the second stages, their configs,
grids and the selection are the tool's (``tools/select_second_stage.py``).
"""
from typing import Dict, List, Sequence

from .configs import config_path
from .methods import GROUPS as METHOD_GROUPS
from .methods import LR_GRID, METHODS, Method, train_dataset

TRAIN_IMAGES_PER_CLASS = 6000
STAGE1 = config_path('fmnist_stage1')
#: the schedule of the shipped stage-2 configs (disalign_resnet-s_1xb128-coslr-6e_fmnist-lt.py)
STAGE2_EPOCHS = 6

#: the stage-1 model itself (a report row, not a second stage)
STAGE1_ROW = Method('stage1', 'Stage 1 (joint training, cross entropy)', 'main')
#: Sec. 3.1: the classifier re-trained (as cRT) on the balanced training set
BOUND = Method('bound', 'Balanced-data bound (classifier re-trained on balanced data)', 'bound',
               dict(lr=LR_GRID), head='stage1', trainable=[r'^head\.fc\.'],
               reinit=[r'head\.fc'], sampler=dict(type='DefaultSampler', shuffle=True),
               train_set='balanced')
#: the report's rows, in order
ROWS: List[Method] = [STAGE1_ROW] + list(METHODS) + [BOUND]
GROUPS = dict(METHOD_GROUPS, main='DisAlign and its peers (one stage-1 model per seed)',
              bound='Upper bound (Sec. 3.1)')


def stage1_options(seed: int, n_max: int, imb_factor: float, val_per_class: int,
                   cfg_options: Sequence[str] = ()) -> Dict[str, object]:
    """``--cfg-options`` of the stage-1 run of ``seed``, and the data of every
    split (the long-tailed subset is a function of these values): seed 0
    keeps the label order, other seeds permute which classes are rare.
    ``cfg_options`` (``key=value`` strings) come last."""
    opts: Dict[str, object] = {}
    lt = dict(n_max=n_max, imb_factor=imb_factor, permute_classes=seed != 0, seed=seed,
              val_per_class=val_per_class)
    for split in ('train', 'val', 'test'):
        for k, v in lt.items():
            opts[f'{split}_dataloader.dataset.{k}'] = v
    opts['randomness.seed'] = seed
    for item in cfg_options:
        k, _, v = item.partition('=')
        opts[k] = v
    return opts


def extra_splits(cfg) -> Dict[str, dict]:
    """The validation split (``split='val'``: held-out training images,
    balanced) and the balanced training set of the bound (every class with
    ``n_max`` images, the validation images still held out), read as the
    training set is (no augmentation)."""
    train = train_dataset(cfg)
    return dict(val=dict(train, split='val'), balanced=dict(train, imb_factor=1.0))


def intro(meta: dict) -> str:
    """The paragraph above the tables."""
    seeds = meta['seeds']
    return (
        f'Fashion-MNIST-LT (imbalance factor {meta["imb_factor"]:g}), top-1 accuracy (%) on '
        f'the balanced test set, mean ± std over {len(seeds)} seeds ({", ".join(map(str, seeds))}'
        '; seed 0 keeps the label order, the others permute which classes are rare). '
        f'Groups by training images: Many > {meta["many_thr"]:g}, Few < {meta["few_thr"]:g}. '
        'Hyper-parameters chosen on the validation split '
        f'({meta["val_per_class"]} held-out training images per class); chosen values per seed.')
