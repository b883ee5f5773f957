#!/usr/bin/env python
"""Plot per-class results against training frequency and compare two runs.

Reads the per-class JSON files that the plugin's long-tail metrics write in
a test run (``LongTailAccuracy``: ``per_class_accuracy.json``,
``HeadBodyTailIoUMetric``: ``per_class_iou.json``, the LVIS metrics of
``disalign_mm.det``), one run or two (first "before", e.g. stage 1, second
"after", e.g. DisAlign), and writes to ``--out-dir``:

* ``per_class_<metric>.png``: the per-class metric (the record's primary,
  or ``--metric``) of each run, classes sorted by training count, groups
  shaded, training counts on a log axis (the paper's Figure 1), and the
  change of each class when two runs are given;
* ``reliability.png`` (classification): reliability diagrams and the
  expected calibration error per group (Many/Medium/Few and all);
* ``summary.md`` / ``summary.json``: per-group means, summary metrics, ECE,
  and the ``--top`` classes that gained and lost most.

The summary is printed too. Example::

    python tools/long_tail_diagnostics.py work_dirs/demo/stage1_test.json \\
        work_dirs/demo/disalign_test.json --labels 'stage 1' DisAlign \\
        --out-dir work_dirs/demo/diagnostics

or ``mim run disalign_mm long_tail_diagnostics ...`` with the same arguments.
Needs matplotlib (``requirements/optional.txt``).
"""
import argparse
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('runs', nargs='+', metavar='RUN_JSON',
                   help='one or two per-class JSON files (before, after)')
    p.add_argument('--out-dir', required=True, help='where the PNGs and the summary go')
    p.add_argument('--labels', nargs='+', help='one label per run (default: from the file '
                   'names, e.g. stage1_test)')
    p.add_argument('--metric', help='per-class entry to plot and compare (default: the '
                   "record's primary: accuracy, IoU or bbox_AP)")
    p.add_argument('--top', type=int, default=10,
                   help='classes listed as gained and as lost (default: 10)')
    p.add_argument('--allow-different-test-sets', action='store_true',
                   help='compare two runs evaluated on different test sets (refused by '
                   'default: the change would mix the models with the data)')
    args = p.parse_args(argv)
    if len(args.runs) > 2:
        p.error(f'give one or two RUN_JSON files, got {len(args.runs)}')
    if args.labels and len(args.labels) != len(args.runs):
        p.error(f'--labels has {len(args.labels)} entries for {len(args.runs)} runs')
    if args.top < 0:
        p.error('--top must be >= 0')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from disalign_mm.diagnostics import diagnose, summary_markdown
    try:
        summary = diagnose(args.runs, args.out_dir, labels=args.labels, metric=args.metric,
                           top=args.top, allow_different_test_sets=args.allow_different_test_sets)
    except (ValueError, FileNotFoundError, ImportError) as e:
        sys.exit(f'error: {e}')
    print(summary_markdown(summary))
    print(f'wrote {", ".join(summary["figures"] + [summary["markdown"], summary["json"]])}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
