#!/usr/bin/env python
"""Choose the post-hoc second stage of your own detector or segmentor.

For an mmdet softmax two-stage detector (Mask R-CNN, Cascade R-CNN, Faster
R-CNN: NorCal's gamma) or an mmseg EncoderDecoder (logit adjustment's tau,
per pixel) and its stage-1 checkpoint (the library:
:func:`disalign_mm.second_stage.dense.select_dense_second_stage`):

1. runs the frozen model once over the held-out and the test set, on
   ``--device``, with a progress bar, and caches what the post-hoc method
   needs (``WORK_DIR/stage1_outputs``; keyed on the checkpoint, the config
   and the images; an interrupted run resumes): detection, the (RoI, class)
   pairs above ``score_thr`` with their boxes and scores at every gamma, and
   the masks of the detections; segmentation, the decode head's logits;
2. checks itself: ``mim test`` of the stage-1 checkpoint on
   ``--check-images`` test images must give the cached metrics;
3. scores every value of ``--values`` on the held-out set from the cache
   with the host's post-processing and the plugin's long-tail metrics (AP
   with APr / APc / APf; mIoU with Head / Body / Tail): the config's
   validation set (``--val-set config``, refused when it holds test
   images) or a class-aware split of the training set (``--val-set
   held-out``, recorded in ``WORK_DIR/split.json``; stage 1 has seen it);
4. prints the table: stage 1, the chosen value, and the DisAlign / cRT
   checkpoints given (``--disalign``, ``--crt``, tested with the host's test
   loop); ``results.md``, ``results.json``;
5. writes ``WORK_DIR/stage2_<method>.py``: the stage-1 config with the
   chosen value and the class counts, for ``mim test`` on the stage-1
   checkpoint.

Example::

    python tools/select_dense_second_stage.py \\
        configs/lvis_v1/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py stage1.pth \\
        --val-set held-out --device cuda --work-dir work_dirs/norcal
    mim test mmdet work_dirs/norcal/stage2_norcal.py --checkpoint stage1.pth
"""
import argparse
import os.path as osp
import sys


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be 0 or a positive integer, got {value}')
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be a positive integer, got {value}')
    return value


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument('config', help='the stage-1 mmdet or mmseg config')
    p.add_argument('checkpoint', help='its checkpoint (a local file)')
    p.add_argument('--work-dir', help='cache, results and the written config (default: '
                   'work_dirs/select_dense_second_stage/<config name>)')
    p.add_argument('--val-set', choices=['config', 'held-out'], default='config',
                   help="held-out data: the config's validation set (default; refused when it "
                   "holds test images) or 'held-out', a class-aware split of the training set "
                   '(stage 1 has seen it: biased)')
    p.add_argument('--val-per-class', type=positive_int, default=20,
                   help='images per class of the held-out split (default 20)')
    p.add_argument('--split-seed', type=int, default=0)
    p.add_argument('--values', type=float, nargs='+', default=None,
                   help='the gamma (detection) or tau (segmentation) values to score (default: '
                   'gamma 0 to 1.5, tau 0 to 2, in steps of 0.25; 0 is always scored)')
    p.add_argument('--class-counts', default=None,
                   help='training counts per class, a counts JSON (default: LVIS image_count, '
                   'else counted from the training annotations; the ADE20K table, else the '
                   'training masks)')
    p.add_argument('--disalign', nargs=2, metavar=('CONFIG', 'CHECKPOINT'),
                   help='a DisAlign stage 2 to test for the table')
    p.add_argument('--crt', nargs=2, metavar=('CONFIG', 'CHECKPOINT'),
                   help='a cRT stage 2 to test for the table')
    p.add_argument('--device', default='cpu', help='where the model runs (cpu, cuda)')
    p.add_argument('--batch-size', type=positive_int, default=None,
                   help="images per forward (default: the config's test batch size)")
    p.add_argument('--cache-dtype', choices=['float32', 'float16'], default='float32',
                   help='storage of the cached logits and masks (float16 halves it and rounds '
                   'them; float32 scores exactly what mim test scores)')
    p.add_argument('--recompute', action='store_true', help='recompute the cached outputs')
    p.add_argument('--check-images', type=non_negative_int, default=200,
                   help='test images of the self-check (mim test of the stage-1 checkpoint '
                   'against the cache), evenly spaced; 0: all (default 200)')
    p.add_argument('--no-export', action='store_true', help='do not write the chosen config')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   metavar='KEY=VALUE',
                   help='changes of the stage-1 config (as mim test --cfg-options), also '
                   'written into the chosen config (--disalign / --crt configs are used as '
                   'they are)')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from disalign_mm.engine.build import ConfigBuildError
    from disalign_mm.second_stage.check import Stage1Mismatch
    from disalign_mm.second_stage.dense import (DenseSettings, markdown_table,
                                                select_dense_second_stage)

    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'select_dense_second_stage', name)
    compare = {k: tuple(v) for k, v in (('DisAlign', args.disalign), ('cRT', args.crt)) if v}
    settings = DenseSettings(
        val_set=args.val_set, val_per_class=args.val_per_class, split_seed=args.split_seed,
        grid=args.values, class_counts_file=args.class_counts, device=args.device,
        batch_size=args.batch_size, cache_dtype=args.cache_dtype, recompute=args.recompute,
        check_images=args.check_images, compare=compare, export=not args.no_export)

    def log(msg: str) -> None:
        print(f'[select_dense_second_stage] {msg}', flush=True)

    try:
        result = select_dense_second_stage(args.config, args.checkpoint, work_dir, settings,
                                           options=args.cfg_options, log=log)
    except (FileNotFoundError, ValueError, NotImplementedError, ConfigBuildError,
            Stage1Mismatch) as e:
        sys.exit(f'[select_dense_second_stage] error: {e}')
    print()
    print(markdown_table(result))
    log(f'results: {osp.join(osp.abspath(work_dir), "results.md")}, results.json '
        f'({result["meta"]["wall_time_s"]:.0f} s)')
    return result


if __name__ == '__main__':
    main()
