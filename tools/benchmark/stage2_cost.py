"""Cost of DisAlign stage 2 against stage 1 and inference, per host.

For each host the stage-1 and stage-2 models are built from the project's
own shipped configs, in one process, and timed on the SAME synthetic batch
(in the data preprocessor's input format, with the host's data samples):

* ``stage1``: ``model.train_step`` of the stage-1 model, every parameter
  trainable, with the config's SGD optimizer;
* ``stage2``: ``model.train_step`` of the stage-2 model frozen by
  :func:`disalign_mm.engine.freeze_stage2`, the function
  :class:`~disalign_mm.engine.DisAlignFreezeHook` runs (only calibration
  parameters train; after ``model.train()`` the frozen modules are put back
  in eval mode, as the hook does before every iteration);
* ``infer``: ``model.test_step`` of the stage-2 model under
  ``torch.no_grad()`` in eval mode (pre-processing, forward and the host's
  post-processing, as deployed). For det, the random detector is made to
  score like a trained one: ``--det-bg-logit`` (default 10) is added to the
  background logit and to the logits of ``--det-fg-classes`` classes
  (default 3). Without it every one of the 1203 classes of every proposal
  passes LVIS' ``score_thr=1e-4`` and NMS over 1.2M boxes per image
  dominates (about 25 s per batch on 2 CPU cores); with the background
  alone nothing passes and inference skips the mask head. With both, a few
  classes per proposal pass, and the detector keeps its ``max_per_img``
  (300 for LVIS) detections, masks included, as a trained LVIS detector
  does. The JSON records the mean number of detections per image.

After warm-up iterations the three are repeated interleaved and the median
of each is reported, with the ratios stage2 / infer and stage2 / stage1, the
number of trainable stage-2 parameters, and whether stage2 / infer is within
the target (1.3 by default).

The weights are random (``init_cfg=None``, no download); the stage-2 model
gets the stage-1 model's weights, as with ``load_from``. The optimizer
learning rate is set to ``--lr`` (default 1e-5) so that repeated steps keep a
random model finite; the cost of an SGD step does not depend on it.

Examples::

    python tools/benchmark/stage2_cost.py --hosts cls seg det --repeats 10 \\
        --json work_dirs/stage2_cost.json
    # small and fast (what the tests run)
    python tools/benchmark/stage2_cost.py --hosts cls --img-size 16 \\
        --batch-size 4 --num-classes 5 --repeats 2 --warmup 1

The work is done by :mod:`disalign_mm.benchmarks.cost`; this file is its command
line.
"""
import argparse
import dataclasses
import json
import os
import os.path as osp
import sys
import time
from typing import List

import torch

from disalign_mm.benchmarks.cost import HOSTS, TARGET, CostSettings, format_table, measure_host


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--hosts', nargs='+', default=['cls', 'seg', 'det'], choices=sorted(HOSTS))
    p.add_argument('--repeats', type=int, default=10, help='timed repetitions (median)')
    p.add_argument('--warmup', type=int, default=2, help='untimed iterations first')
    p.add_argument('--img-size', type=int, default=None,
                   help='square input size for every host (default: cls 28, seg 128, det 256)')
    p.add_argument('--batch-size', type=int, default=None,
                   help='default: the config per-GPU batch (cls 128, seg 4, det 2)')
    p.add_argument('--num-classes', type=int, default=None,
                   help='default: the config (cls 10, seg 150, det 1203)')
    p.add_argument('--depth', type=int, default=None,
                   help='backbone depth override, e.g. 18 (default: the config)')
    p.add_argument('--threads', type=int, default=min(4, os.cpu_count() or 1),
                   help='torch.set_num_threads (default: min(4, CPUs))')
    p.add_argument('--lr', type=float, default=1e-5,
                   help='learning rate of both optimizers (default 1e-5)')
    p.add_argument('--det-bg-logit', type=float, default=10.0,
                   help='added to the random detector\'s background logit and to '
                   'that of --det-fg-classes classes, so that a few classes per box '
                   'pass LVIS\' score_thr, as with a trained model (default 10; 0: '
                   'all 1000 x 1203 boxes reach NMS)')
    p.add_argument('--det-fg-classes', type=int, default=3,
                   help='classes that pass the score threshold with --det-bg-logit '
                   '(default 3: the detector keeps max_per_img detections and runs '
                   'its mask head on them; 0: nothing is detected)')
    p.add_argument('--target', type=float, default=TARGET,
                   help=f'target for stage2 / infer (default {TARGET})')
    p.add_argument('--json', default=None, help='write the results here')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                   help='overrides applied to both configs of every host')
    args = p.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        p.error('--repeats must be >= 1 and --warmup >= 0')
    return args


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = CostSettings(**{f.name: getattr(args, f.name)
                               for f in dataclasses.fields(CostSettings)})
    results = []
    for host in args.hosts:
        t = time.perf_counter()
        r = measure_host(host, settings)
        results.append(r)
        print(f'{host}: measured in {time.perf_counter() - t:.1f} s', file=sys.stderr)
    print(f'stage-2 cost, median of {args.repeats} interleaved repeats after '
          f'{args.warmup} warm-up, {torch.get_num_threads()} threads, '
          f'device cpu, torch {torch.__version__}')
    print(format_table(results))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(results=results), f, indent=1)
    return results


if __name__ == '__main__':
    main()
