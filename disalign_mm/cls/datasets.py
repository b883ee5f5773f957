"""Long-tailed classification data sets.

ImageNet-LT and Places-LT need no class of their own: their list files
(``relative/path.jpg label`` per line) are read by mmpretrain's ``ImageNet``
and ``CustomDataset`` (see the configs). Here: iNaturalist 2018 (COCO-style
JSON) and Fashion-MNIST-LT (Debian's ``dataset-fashion-mnist`` files).
"""
import gzip
import json
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.datasets.categories import FASHIONMNIST_CATEGORITES
from mmpretrain.registry import DATASETS

from ..engine.class_counts import leaf_datasets

FMNIST_DEFAULT_ROOT = '/usr/share/datasets/fashion-mnist'
FMNIST_FILES = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}
FMNIST_HOWTO = ('On Debian/Ubuntu: `sudo apt-get update && sudo apt-get install -y '
                f'dataset-fashion-mnist` (installs them under {FMNIST_DEFAULT_ROOT}), '
                'or set data_root to a directory that holds them.')


def long_tail_counts(n_max: int, num_classes: int, imb_factor: float) -> List[int]:
    """Exponential profile ``n_i = floor(n_max * imb_factor ** (-i / (K - 1)))``
    (the CIFAR-LT recipe): class 0 has ``n_max`` images, the last class
    ``n_max / imb_factor``.

    >>> long_tail_counts(6000, 10, 100)
    [6000, 3597, 2156, 1292, 774, 464, 278, 166, 100, 60]
    """
    if imb_factor < 1:
        raise ValueError(f'imb_factor must be >= 1, got {imb_factor}')
    if n_max < 1 or num_classes < 1:
        raise ValueError('n_max and num_classes must be positive')
    if num_classes == 1:
        return [int(n_max)]
    # the small epsilon keeps exact products (6000 / 100 = 60) from flooring to 59
    return [
        int(math.floor(n_max * imb_factor**(-i / (num_classes - 1)) + 1e-6))
        for i in range(num_classes)
    ]


_IDX_CACHE: Dict[Tuple[str, float], np.ndarray] = {}


def read_idx_gz(path: str) -> np.ndarray:
    """Read an IDX file (MNIST format), gzip-compressed or not."""
    key = (path, osp.getmtime(path))
    if key in _IDX_CACHE:
        return _IDX_CACHE[key]
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise ValueError(f'{path} is not an IDX file of unsigned bytes')
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim))
    offset = 4 + 4 * ndim
    arr = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f'{path} is truncated: header says {shape}, '
                         f'found {arr.size} values')
    arr = arr.reshape(shape)
    _IDX_CACHE[key] = arr
    return arr


@DATASETS.register_module()
class FashionMNISTLT(BaseDataset):
    """Long-tailed Fashion-MNIST, read from the ``.gz`` files of Debian's
    ``dataset-fashion-mnist`` package.

    The training split keeps ``n_i = floor(n_max * imb_factor ** (-r_i / (K -
    1)))`` images of class ``i`` (the CIFAR-LT recipe), where ``r_i`` is the
    rank of class ``i``: ``r_i = i``, or a seeded permutation when
    ``permute_classes`` is True. Which images are kept is a seeded draw, so
    the subset is fixed by ``seed``. ``split='val'`` takes ``val_per_class``
    images of each class from the training images the long-tailed subset did
    not use (balanced, disjoint from it; same ``seed``, ``n_max``,
    ``imb_factor`` and ``permute_classes`` as the training split).
    ``split='test'`` is the full, balanced test set (1000 per class).

    Images are ``(28, 28)`` uint8 arrays under ``img``.

    Args:
        data_root (str): Directory with ``train-images-idx3-ubyte.gz`` etc.
            Defaults to ``'/usr/share/datasets/fashion-mnist'``.
        split (str): ``'train'``, ``'val'`` or ``'test'``. Defaults to
            ``'train'``.
        imb_factor (float): ``n_max / n_min``. Defaults to 100. 1 keeps
            ``n_max`` per class.
        n_max (int): Images of the most frequent class. Defaults to 6000
            (all of them; a validation split then needs ``n_max +
            val_per_class <= 6000``).
        permute_classes (bool): Shuffle which classes are frequent/rare
            (seeded). Defaults to False (class 0 most frequent).
        val_per_class (int): Images per class of ``split='val'``.
            Defaults to 100.
        seed (int): Seed of the subset draw and the permutation. Defaults
            to 0.
        **kwargs: ``pipeline``, ``test_mode``, ... of
            :class:`mmpretrain.datasets.BaseDataset`.
    """
    METAINFO = {'classes': FASHIONMNIST_CATEGORITES}
    SPLITS = ('train', 'val', 'test')

    def __init__(self,
                 data_root: str = FMNIST_DEFAULT_ROOT,
                 split: str = 'train',
                 imb_factor: float = 100.0,
                 n_max: int = 6000,
                 permute_classes: bool = False,
                 val_per_class: int = 100,
                 seed: int = 0,
                 **kwargs) -> None:
        if split not in self.SPLITS:
            raise ValueError(f'split must be one of {self.SPLITS}, got {split!r}')
        self.split = split
        self.imb_factor = float(imb_factor)
        self.n_max = int(n_max)
        self.permute_classes = permute_classes
        self.val_per_class = int(val_per_class)
        self.seed = int(seed)
        self.class_counts: Optional[List[int]] = None
        kwargs.setdefault('test_mode', split != 'train')
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def _files(self, which: str) -> Tuple[str, str]:
        paths = []
        for name in FMNIST_FILES[which]:
            path = osp.join(self.data_root, name)
            if not osp.isfile(path) and osp.isfile(path[:-3]):
                path = path[:-3]  # uncompressed copy
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'Fashion-MNIST file {osp.join(self.data_root, name)} not '
                    f'found. {FMNIST_HOWTO}')
            paths.append(path)
        return paths[0], paths[1]

    def class_ranks(self, num_classes: int) -> List[int]:
        """Rank of each class in the profile (0 = most frequent)."""
        if not self.permute_classes:
            return list(range(num_classes))
        rng = np.random.default_rng([self.seed, 1])
        return rng.permutation(num_classes).tolist()

    def _lt_selection(self, labels: np.ndarray, num_classes: int):
        """(train indices per class, unused indices per class)."""
        profile = long_tail_counts(self.n_max, num_classes, self.imb_factor)
        ranks = self.class_ranks(num_classes)
        rng = np.random.default_rng([self.seed, 0])
        chosen, unused = [], []
        for c in range(num_classes):
            idx = np.flatnonzero(labels == c)
            n = profile[ranks[c]]
            if n > idx.size:
                raise ValueError(
                    f'n_max={self.n_max} asks for {n} images of class {c} but '
                    f'Fashion-MNIST has {idx.size}: lower n_max')
            idx = rng.permutation(idx)
            chosen.append(np.sort(idx[:n]))
            unused.append(idx[n:])
        return chosen, unused

    def load_data_list(self) -> List[dict]:
        img_file, label_file = self._files('test' if self.split == 'test' else 'train')
        images = read_idx_gz(img_file)
        labels = read_idx_gz(label_file).astype(np.int64)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f'{img_file} has {images.shape[0]} images but '
                             f'{label_file} {labels.shape[0]} labels')
        num_classes = len(self.metainfo['classes'])
        if self.split == 'test':
            keep = np.arange(labels.size)
        else:
            chosen, unused = self._lt_selection(labels, num_classes)
            if self.split == 'train':
                keep = np.sort(np.concatenate(chosen))
            else:
                short = [c for c in range(num_classes)
                         if unused[c].size < self.val_per_class]
                if short:
                    raise ValueError(
                        f'split=val needs {self.val_per_class} unused training '
                        f'images per class, but classes {short} have fewer '
                        f'(n_max={self.n_max} uses them). Use n_max <= '
                        f'{6000 - self.val_per_class} for both the train and '
                        'val splits, or a smaller val_per_class.')
                keep = np.sort(np.concatenate(
                    [np.sort(u[:self.val_per_class]) for u in unused]))
        self.class_counts = np.bincount(labels[keep], minlength=num_classes).tolist()
        return [dict(img=images[i], gt_label=int(labels[i])) for i in keep]

    def extra_repr(self) -> List[str]:
        return [
            f'Split: \t{self.split}', f'Data root: \t{self.data_root}',
            f'Imbalance factor: \t{self.imb_factor}', f'n_max: \t{self.n_max}',
            f'Class counts: \t{self.class_counts}'
        ]


@DATASETS.register_module()
class INaturalist2018(BaseDataset):
    """iNaturalist 2018 from its COCO-style JSON annotations
    (``train2018.json``, ``val2018.json``)::

        {"images": [{"id": 1, "file_name": "train_val2018/Plantae/.../x.jpg"}],
         "annotations": [{"image_id": 1, "category_id": 7477}],
         "categories": [{"id": 7477, "name": "..."}]}

    Labels are the category ids' ranks (the ids of iNat 2018 are already
    0..8141, so label == id there). File names are relative to
    ``data_prefix`` (or ``data_root``).

    Args:
        ann_file (str): The JSON file.
        data_root (str): Defaults to ''.
        data_prefix (str | dict): Image root. Defaults to ''.
        **kwargs: See :class:`mmpretrain.datasets.BaseDataset`.
    """

    def __init__(self, ann_file: str, data_root: str = '', data_prefix='', **kwargs) -> None:
        super().__init__(ann_file=ann_file, data_root=data_root,
                         data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'iNaturalist 2018 annotation file {self.ann_file} not found '
                '(train2018.json / val2018.json from the iNat 2018 release, '
                'under data_root)')
        with open(self.ann_file) as f:
            data = json.load(f)
        missing = [k for k in ('images', 'annotations', 'categories') if not data.get(k)]
        if missing:
            raise ValueError(
                f'{self.ann_file} has no {missing}: iNaturalist 2018 needs '
                'labelled JSON (train2018.json / val2018.json; test2018.json '
                'has no annotations)')
        cat_ids = sorted(int(c['id']) for c in data['categories'])
        names = {int(c['id']): str(c.get('name', c['id'])) for c in data['categories']}
        label_of = {cid: i for i, cid in enumerate(cat_ids)}
        if 'classes' not in self._metainfo:
            self._metainfo['classes'] = tuple(names[c] for c in cat_ids)
        files = {int(im['id']): im['file_name'] for im in data['images']}
        prefix = self.data_prefix['img_path']
        out = []
        for ann in data['annotations']:
            img_id, cid = int(ann['image_id']), int(ann['category_id'])
            if img_id not in files or cid not in label_of:
                raise ValueError(f'{self.ann_file}: annotation {ann} refers to an '
                                 'unknown image or category')
            out.append(dict(img_path=osp.join(prefix, files[img_id]),
                            gt_label=label_of[cid]))
        return out


def class_counts_of(dataset, num_classes: Optional[int] = None) -> np.ndarray:
    """Images per class of a (possibly wrapped) classification data set, or
    of a list of data sets (summed).

    The labels are read from the annotations (``get_gt_labels()``, or
    ``gt_label`` of each ``get_data_info``); no image is read. Wrappers are
    looked through (:func:`~disalign_mm.engine.leaf_datasets`): a
    ``ConcatDataset`` sums its parts, a ``RepeatDataset`` or
    ``ClassBalancedDataset`` gives the counts of the data set it resamples.
    """
    parts = dataset if isinstance(dataset, (list, tuple)) else [dataset]
    total = np.zeros(num_classes or 0, dtype=np.int64)
    for leaf in (leaf for d in parts for leaf in leaf_datasets(d)):
        if hasattr(leaf, 'full_init'):
            leaf.full_init()  # built with lazy_init (a test-only run): load the annotations
        if hasattr(leaf, 'get_gt_labels'):
            labels = np.asarray(leaf.get_gt_labels()).reshape(-1)
        elif hasattr(leaf, 'get_data_info'):
            labels = np.asarray([int(leaf.get_data_info(i)['gt_label'])
                                 for i in range(len(leaf))])
        else:
            raise TypeError(f'cannot read the labels of a {type(leaf).__name__} without '
                            'loading its samples: it has neither get_gt_labels() nor '
                            'get_data_info(); give the class counts in a file instead')
        labels = labels.astype(np.int64)
        if labels.size and labels.min() < 0:
            raise ValueError('the training set has negative labels')
        if num_classes is not None and labels.size and labels.max() >= num_classes:
            raise ValueError(f'the training set has label {labels.max()} but the '
                             f'model has {num_classes} classes')
        counts = np.bincount(labels, minlength=num_classes or 0)
        n = max(total.size, counts.size)
        total = np.pad(total, (0, n - total.size)) + np.pad(counts, (0, n - counts.size))
    return total


__all__: Sequence[str] = ('FashionMNISTLT', 'INaturalist2018', 'long_tail_counts',
                          'read_idx_gz', 'class_counts_of')
