"""The Fashion-MNIST-LT benchmark: its second stages, their grids and
tables, its splits and the stage-1 options of a seed.

Everything data-set specific lives here; the other modules of
:mod:`disalign_mm.bench` take configs, data set configs and methods as
arguments.
"""
from typing import Dict, List, Sequence

from .configs import config_path
from .features import without_augmentation
from .methods import Method

LR_GRID = (0.01, 0.03, 0.1, 0.3)
RHO_GRID = (0.5, 1.0, 1.2, 1.5, 2.0)
TAU_GRID = tuple(round(0.1 * i, 1) for i in range(21))  # 0.0 .. 2.0
GRIDS = dict(lr=LR_GRID, rho=RHO_GRID, tau=TAU_GRID)
TRAIN_IMAGES_PER_CLASS = 6000

STAGE1 = config_path('fmnist_stage1')
_GRW = dict(type='GRWCrossEntropyLoss', rho=1.2)
_DISALIGN = config_path('fmnist_disalign')
_LR_RHO = dict(lr=LR_GRID, rho=RHO_GRID)

METHODS: List[Method] = [
    Method('stage1', 'Stage 1 (joint training, cross entropy)', STAGE1, 'main'),
    Method('crt', 'cRT (class-balanced sampling)', config_path('fmnist_crt'), 'main',
           dict(lr=LR_GRID)),
    Method('lws', 'LWS (class-balanced sampling)', config_path('fmnist_lws'), 'main',
           dict(lr=LR_GRID)),
    Method('taunorm', 'tau-normalisation (post-hoc)', config_path('fmnist_taunorm'), 'main',
           dict(tau=TAU_GRID)),
    Method('logitadj', 'Logit adjustment (post-hoc)', config_path('fmnist_logitadj'), 'main',
           dict(tau=TAU_GRID)),
    Method('disalign', 'DisAlign', _DISALIGN, 'main', _LR_RHO, calibration_stats=True),
    # Table 5 (GR / MT / MG)
    Method('grw_only', 'GRW only (classifier re-trained, no calibration)', _DISALIGN, 'table5',
           _LR_RHO, head=dict(type='LinearClsHead', loss=_GRW), replace_head=True,
           trainable=[r'^head\.fc\.']),
    Method('grw_mag', 'GRW + magnitude', _DISALIGN, 'table5', _LR_RHO,
           head=dict(calibration=dict(use_margin=False))),
    Method('grw_margin', 'GRW + margin', _DISALIGN, 'table5', _LR_RHO,
           head=dict(calibration=dict(use_magnitude=False))),
    Method('grw_full', 'GRW + magnitude + margin (DisAlign)', _DISALIGN, 'table5',
           same_as='disalign'),
    # Table 12 (confidence score)
    Method('conf_input', 'Confidence sigma(v^T x + b) (DisAlign)', _DISALIGN, 'table12',
           same_as='disalign'),
    Method('conf_constant', 'Constant confidence sigma(b)', _DISALIGN, 'table12', _LR_RHO,
           head=dict(calibration=dict(confidence='constant'))),
    Method('conf_none', 'No confidence (sigma = 1)', _DISALIGN, 'table12', _LR_RHO,
           head=dict(calibration=dict(confidence='none'))),
    # Sec. 3.1: the classifier re-trained on balanced data, same features
    Method('bound', 'Balanced-data bound (classifier re-trained on balanced data)',
           config_path('fmnist_crt'), 'bound', dict(lr=LR_GRID),
           sampler=dict(type='DefaultSampler', shuffle=True), train_set='balanced'),
]
GROUPS = {
    'main': 'DisAlign and its peers (one stage-1 model per seed)',
    'table5': "Ablation of the components (the paper's Table 5)",
    'table12': "Ablation of the confidence score (the paper's Table 12)",
    'bound': 'Upper bound (Sec. 3.1)',
}


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


def split_configs(cfg) -> Dict[str, dict]:
    """Data set configs of the four cached splits, no random augmentation:
    the long-tailed training set, the validation split (held-out training
    images, balanced), the balanced test set, and the balanced training set
    of the bound (every class with ``n_max`` images, the validation images
    still held out)."""
    train = without_augmentation(cfg.train_dataloader.dataset.to_dict())
    return dict(
        train=train,
        val=dict(train, split='val'),
        test=without_augmentation(cfg.test_dataloader.dataset.to_dict()),
        balanced=dict(train, imb_factor=1.0),
    )


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
