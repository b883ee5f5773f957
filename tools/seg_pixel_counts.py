#!/usr/bin/env python
"""Count the training pixels of each class of an mmseg data set.

Streams over the training masks of a config's ``train_dataloader`` (one mask
at a time, with a progress bar), applies the data set's
``reduce_zero_label`` and ``label_map`` as mmseg's ``LoadAnnotations`` does,
and writes a ``disalign_mm/class-counts@1`` JSON (unit ``pixels``) usable as
``class_counts_file`` of ``ClassCountsHook``, ``SegGRWCrossEntropyLoss``
and ``HeadBodyTailIoUMetric`` (``ClassCountsHook`` counts the training masks
itself when a run starts; this tool does it ahead of time). The result is
cached: rerunning with unchanged masks reads the JSON back (``--force``
recomputes).

Example::

    python tools/seg_pixel_counts.py configs/ade20k/fcn_r50-d8_4xb4-160k_ade20k-512x512.py \\
        --out data/ade/pixel_counts.json

A label outside ``0..num_classes-1`` other than 255 (ignored) is an error.
"""
import argparse
import os.path as osp
import sys

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config', help='mmseg config with a train_dataloader')
    p.add_argument('--out', help='output JSON (default: work_dirs/pixel_counts/'
                   '<config name>.json)')
    p.add_argument('--split', default='train', choices=['train', 'val', 'test'],
                   help='which dataloader to count (default: train)')
    p.add_argument('--ignore-index', type=int, default=255)
    p.add_argument('--force', action='store_true', help='ignore the cache')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, e.g. train_dataloader.'
                   'dataset.data_root=data/ade/ADEChallengeData2016')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    from mmseg.registry import DATASETS
    from mmseg.utils import register_all_modules

    import disalign_mm.seg  # noqa: F401
    from disalign_mm.engine.class_stats import HEAD_THR, TAIL_THR, ratio_groups
    from disalign_mm.seg.pixel_counts import dataset_pixel_counts
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    loader = cfg.get(f'{args.split}_dataloader')
    if not loader or 'dataset' not in loader:
        sys.exit(f'{args.config} has no {args.split}_dataloader.dataset')
    ds_cfg = loader['dataset'].copy()

    def strip_pipeline(c):
        if 'pipeline' in c:
            c['pipeline'] = []  # masks are read directly, not through transforms
        for k in ('dataset', 'datasets'):
            if k in c:
                subs = c[k] if isinstance(c[k], list) else [c[k]]
                for s in subs:
                    strip_pipeline(s)

    strip_pipeline(ds_cfg)
    dataset = DATASETS.build(ds_cfg)
    out = args.out or osp.join(
        'work_dirs', 'pixel_counts', osp.splitext(osp.basename(args.config))[0] + '.json')
    try:
        counts, cached = dataset_pixel_counts(dataset, out=out, force=args.force,
                                              ignore_index=args.ignore_index,
                                              progress=not args.no_progress)
    except ValueError as e:
        sys.exit(f'error: {e}')
    c = np.asarray(counts.counts)
    groups = ratio_groups(counts) if c.sum() > 0 else dict(head=[], body=[], tail=[])
    print(f'{"read cached" if cached else "wrote"} {out}: {counts.num_classes} classes, '
          f'{int(c.sum()):,} labelled pixels in {counts.extra.get("num_images")} masks; '
          f'head (>{HEAD_THR * 100:g}%) {len(groups["head"])}, body {len(groups["body"])}, '
          f'tail (<{TAIL_THR * 100:g}%) {len(groups["tail"])}; '
          f'{int((c == 0).sum())} classes with no pixel')
    return 0


if __name__ == '__main__':
    sys.exit(main())
