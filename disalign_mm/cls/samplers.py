"""Class-balanced sampling, the data side of Decouple's cRT and LWS second
stages (Kang et al., ICLR 2020)."""
import math
from typing import Iterator, List, Optional, Sized

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import print_log
from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import Sampler


def _labels_of(dataset: Sized) -> np.ndarray:
    """One integer label per index of ``dataset``."""
    if hasattr(dataset, 'get_gt_labels'):
        raw = dataset.get_gt_labels()
        if isinstance(raw, np.ndarray) and raw.ndim == 1 and raw.dtype.kind in 'iu':
            raw = raw.astype(np.int64)
            if raw.size and raw.min() < 0:
                raise ValueError(
                    f'ClassBalancedSampler: negative label {raw.min()} in the data set')
            return raw
        raw = list(raw)
    elif hasattr(dataset, 'get_data_info'):
        raw = [dataset.get_data_info(i)['gt_label'] for i in range(len(dataset))]
    else:
        raise TypeError(
            f'ClassBalancedSampler: {type(dataset).__name__} has neither get_gt_labels() '
            "nor get_data_info(i)['gt_label'], so the class of each sample is unknown")
    labels = np.empty(len(raw), dtype=np.int64)
    for i, lab in enumerate(raw):
        arr = np.asarray(lab).reshape(-1)
        if arr.size != 1:
            raise ValueError(
                f'ClassBalancedSampler: sample {i} has gt_label {lab!r}; class-balanced '
                'sampling needs exactly one label per sample (single-label classification)')
        labels[i] = int(arr[0])
    if labels.size and labels.min() < 0:
        raise ValueError(f'ClassBalancedSampler: negative label {labels.min()} in the data set')
    return labels


@DATA_SAMPLERS.register_module()
class ClassBalancedSampler(Sampler):
    """Class-balanced sampling (Decouple's cRT/LWS): every draw picks a class
    uniformly among the classes that have samples, then one of its samples
    uniformly, with replacement; so ``P(class) = 1 / K`` whatever the class
    sizes.

    An epoch is ``num_samples`` draws, split over the ranks as
    :class:`mmengine.dataset.DefaultSampler` splits its indices (rank ``r``
    takes draws ``r, r + world_size, ...``). The draws are a function of
    ``seed + epoch`` only (the same on every rank); the train loop's
    ``DistSamplerSeedHook`` calls :meth:`set_epoch`.

    Labels come from ``dataset.get_gt_labels()`` when the data set has it,
    else from ``dataset.get_data_info(i)['gt_label']``. Classes without any
    sample are never drawn (logged once).

    Example::

        train_dataloader = dict(
            sampler=dict(_delete_=True, type='ClassBalancedSampler'))

    Args:
        dataset (Sized): The data set.
        num_samples (int, optional): Draws per epoch over all ranks.
            Defaults to None: ``len(dataset)``.
        seed (int, optional): Random seed, identical on every rank. Defaults
            to None: a seed synchronised across ranks.
        round_up (bool): Draw ``ceil(num_samples / world_size)`` per rank
            (every rank the same number). Defaults to True. With False the
            ``num_samples`` draws are dealt over the ranks, the first ones
            may get one more.
    """

    def __init__(self,
                 dataset: Sized,
                 num_samples: Optional[int] = None,
                 seed: Optional[int] = None,
                 round_up: bool = True) -> None:
        rank, world_size = get_dist_info()
        self.rank = rank
        self.world_size = world_size
        self.dataset = dataset
        self.round_up = round_up
        self.epoch = 0
        self.seed = sync_random_seed() if seed is None else int(seed)

        if len(dataset) == 0:
            raise ValueError('ClassBalancedSampler: the data set is empty; check the '
                             'data root and annotation file of train_dataloader.dataset')
        labels = _labels_of(dataset)
        counts = np.bincount(labels)
        present = np.flatnonzero(counts)
        empty = np.flatnonzero(counts == 0).tolist()
        # the sample indices, grouped by class in the order of `present`
        order = np.argsort(labels, kind='stable')
        self.class_ids: List[int] = present.tolist()
        self._sizes = torch.as_tensor(counts[present], dtype=torch.int64)
        self._starts = torch.cumsum(self._sizes, 0) - self._sizes
        self._indices = torch.as_tensor(order, dtype=torch.int64)

        if num_samples is None:
            num_samples = len(dataset)
        if not isinstance(num_samples, (int, np.integer)) or num_samples <= 0:
            raise ValueError(f'ClassBalancedSampler: num_samples must be a positive integer, '
                             f'got {num_samples!r}')
        self.epoch_size = int(num_samples)
        if round_up:
            self.num_samples = math.ceil(self.epoch_size / world_size)
            self.total_size = self.num_samples * world_size
        else:
            self.num_samples = math.ceil((self.epoch_size - rank) / world_size)
            self.total_size = self.epoch_size

        msg = (f'ClassBalancedSampler: {len(present)} classes with samples '
               f'({int(self._sizes.min())} to {int(self._sizes.max())} each), drawn with '
               f'probability 1/{len(present)} each; {self.total_size} draws per epoch')
        if empty:
            msg += (f'; classes {empty[:20]}{" ..." if len(empty) > 20 else ""} '
                    f'({len(empty)}) have no sample and are never drawn')
        print_log(msg, logger='current')

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        k = len(self.class_ids)
        cls = torch.randint(k, (self.total_size, ), generator=g)
        sizes = self._sizes[cls]
        offset = (torch.rand(self.total_size, generator=g, dtype=torch.float64) * sizes).long()
        offset = torch.minimum(offset, sizes - 1)
        indices = self._indices[self._starts[cls] + offset]
        return iter(indices[self.rank:self.total_size:self.world_size].tolist())

    def __len__(self) -> int:
        """Draws on this rank per epoch."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch: the draws depend on ``seed + epoch``."""
        self.epoch = epoch
