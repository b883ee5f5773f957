#!/usr/bin/env python
"""Choose and train the second stage of your own classifier from cached features.

For any mmpretrain classification config and its stage-1 checkpoint
(the library: :func:`disalign_mm.second_stage.select_second_stage`):

1. runs the frozen stage-1 model, as mmengine's Runner builds it from the
   config, once over the training, validation and test sets, on
   ``--device``, with a progress bar, and caches the classifier's input
   features and the stage-1 logits (``WORK_DIR/stage1_outputs``: keyed on
   the checkpoint, the config and the images, so a changed model or data
   set is never read from a stale cache; an interrupted run resumes);
2. checks itself: ``mim test`` of the stage-1 checkpoint on
   ``--check-images`` test images must give the cached outputs' predictions;
3. chooses on the config's validation set when it has one that shares no
   image with the test set (``--val-set auto``), else on a class-balanced
   split held out of the training set (``--val-per-class``, recorded in
   ``WORK_DIR/split.json``; stage 1 has seen those images, and the table
   says so);
4. trains DisAlign and its peers (cRT, LWS, tau-normalisation, logit
   adjustment; the paper's ablations with ``--ablations``) from the cache
   with the plugin's heads, losses and samplers, over hyper-parameter grids
   (``--lr``, ``--rho``, ``--tau``), choosing on the validation data only;
5. prints the table (All / Many / Medium / Few test accuracy per method with
   the chosen values), written as ``results.md`` and ``results.json``, and
   per-class results in ``per_class/`` (for tools/long_tail_diagnostics.py);
6. exports the best method on validation (or ``--export METHOD``) as a
   stage-2 config inheriting yours, ``stage2_<method>.py`` (the class
   counts inside), and its checkpoint ``stage2_<method>.pth`` (stage-1
   weights plus what stage 2 trained), ready for ``mim test`` and
   mmpretrain's inference API.

Example::

    python tools/select_second_stage.py my_stage1.py work_dirs/my_stage1/epoch_90.pth \\
        --work-dir work_dirs/my_stage2 --device cuda
    mim test mmpretrain work_dirs/my_stage2/stage2_disalign.py \\
        --checkpoint work_dirs/my_stage2/stage2_disalign.pth

Stage 2 reads the training images through the config's test pipeline (no
random augmentation), so ``mim train`` of an exported config computes what
the cached path trained.
"""
import argparse
import os
import os.path as osp
import sys

METHOD_KEYS = ('disalign', 'crt', 'lws', 'taunorm', 'logitadj', 'grw_only', 'grw_mag',
               'grw_margin', 'conf_constant', 'conf_none')


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be a positive integer, got {value}')
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be 0 or a positive integer, got {value}')
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be positive, got {value}')
    return value


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument('config', help='the stage-1 mmpretrain config')
    p.add_argument('checkpoint', help='its checkpoint (a local file)')
    p.add_argument('--work-dir', help='cache, configs, results and the export (default: '
                   'work_dirs/select_second_stage/<config name>)')
    p.add_argument('--methods', nargs='+', default=['disalign', 'crt', 'lws', 'taunorm',
                                                    'logitadj'], choices=METHOD_KEYS,
                   help='second stages to compare (default: DisAlign and its peers)')
    p.add_argument('--ablations', action='store_true',
                   help="also the paper's ablations (Table 5: GRW only, + magnitude, + margin; "
                   'Table 12: constant / no confidence)')
    p.add_argument('--val-set', choices=['auto', 'config', 'held-out'], default='auto',
                   help="validation data: 'auto' (default) the config's val_dataloader data set "
                   'when it shares no image with the test set, else a split held out of the '
                   "training set; 'config' the config's validation set; 'held-out' a "
                   "class-balanced split of the training set (stage 1 has seen it: biased)")
    p.add_argument('--val-per-class', type=positive_int, default=20,
                   help='held-out validation images per class (default 20; a class with fewer '
                   'than twice as many gives half of its images)')
    p.add_argument('--split-seed', type=int, default=0)
    p.add_argument('--seed', type=int, default=0, help='randomness.seed of the stage-2 configs')
    p.add_argument('--epochs', type=positive_int, default=10,
                   help='stage-2 epochs (default 10)')
    p.add_argument('--train-batch-size', type=positive_int, default=None,
                   help="stage-2 batch size (default: the config's train batch size)")
    p.add_argument('--lr', type=float, nargs='+', default=None,
                   help='learning rates to search (default 0.01 0.03 0.1 0.3 1)')
    p.add_argument('--rho', type=float, nargs='+', default=None,
                   help='GRW rho values to search (default 0.5 1 1.2 1.5 2)')
    p.add_argument('--tau', type=float, nargs='+', default=None,
                   help='tau values of the post-hoc methods (default 0 to 2 in steps of 0.1)')
    p.add_argument('--many-thr', type=float, default=None,
                   help="Many: more training images than this (default: the config's "
                   'LongTailAccuracy, else 100)')
    p.add_argument('--few-thr', type=float, default=None,
                   help="Few: fewer training images than this (default: the config's, else 20)")
    p.add_argument('--min-count', type=positive_float, default=None,
                   help='floor the count of a class without training images to this for the '
                   'GRW weights (min_count of the loss; default: such a class stops the GRW '
                   'methods)')
    p.add_argument('--export', default='best',
                   help="the method to export: 'best' on validation (default), a method key, "
                   "or 'none'")
    p.add_argument('--device', default='cpu', help='where the stage-1 model runs (cpu, cuda)')
    p.add_argument('--batch-size', type=positive_int, default=None,
                   help="images per stage-1 forward (default: the config's test batch size)")
    p.add_argument('--cache-dtype', choices=['float32', 'float16'], default='float32',
                   help='storage of the cached features and logits (float16 halves it)')
    p.add_argument('--recompute', action='store_true', help='recompute the stage-1 outputs')
    p.add_argument('--check-images', type=non_negative_int, default=2000,
                   help='test images of the self-check (mim test of the stage-1 checkpoint '
                   'against the cached outputs), evenly spaced; 0: all (default 2000)')
    p.add_argument('--quick', action='store_true',
                   help='two values per hyper-parameter, spread over its grid (smoke runs)')
    p.add_argument('--threads', type=positive_int, default=None, help='CPU threads (torch)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   metavar='KEY=VALUE',
                   help='changes of the stage-1 config (as mim train --cfg-options), also '
                   'written into the stage-2 configs')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from disalign_mm.engine.utils import check_device
    check_device(args.device, exit_prefix='[select_second_stage] error: ')
    import torch

    from disalign_mm.engine.build import ConfigBuildError
    from disalign_mm.second_stage import Settings, select_second_stage
    from disalign_mm.second_stage.check import Stage1Mismatch
    from disalign_mm.second_stage.methods import Schedule
    from disalign_mm.second_stage.report import markdown_table

    if args.threads:
        torch.set_num_threads(args.threads)
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'select_second_stage', name)
    grids = {k: v for k, v in dict(lr=args.lr, rho=args.rho, tau=args.tau).items() if v}
    settings = Settings(
        methods=args.methods, ablations=args.ablations, val_set=args.val_set,
        val_per_class=args.val_per_class, split_seed=args.split_seed, seed=args.seed,
        schedule=Schedule(epochs=args.epochs, batch_size=args.train_batch_size),
        grids=grids, many_thr=args.many_thr, few_thr=args.few_thr, min_count=args.min_count,
        device=args.device, batch_size=args.batch_size, cache_dtype=args.cache_dtype,
        recompute=args.recompute, check_images=args.check_images, quick=args.quick,
        export=None if args.export == 'none' else args.export)

    def log(msg: str) -> None:
        print(f'[select_second_stage] {msg}', flush=True)

    try:
        result = select_second_stage(args.config, args.checkpoint, work_dir, settings,
                                     options=args.cfg_options, log=log)
    except (FileNotFoundError, ValueError, NotImplementedError, ConfigBuildError,
            Stage1Mismatch) as e:
        sys.exit(f'[select_second_stage] error: {e}')
    print()
    print(markdown_table(result))
    log(f'results: {osp.join(os.path.abspath(work_dir), "results.md")}, results.json, '
        f'per_class/ ({result["meta"]["wall_time_s"]:.0f} s)')
    return result


if __name__ == '__main__':
    main()
