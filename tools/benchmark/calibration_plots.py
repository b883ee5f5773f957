#!/usr/bin/env python
"""Redraw the plots of a ``tools/benchmark/effectiveness.py`` run from its
results.json (see :mod:`disalign_mm.benchmarks.plots`).

Usage::

    python tools/benchmark/calibration_plots.py RESULTS_JSON [--out-dir DIR]
"""
import argparse
import json
import os.path as osp
from typing import List

from disalign_mm.benchmarks.plots import make_plots


def main(argv=None) -> List[str]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('results', help='results.json of tools/benchmark/effectiveness.py')
    parser.add_argument('--out-dir', default=None, help='default: next to results.json')
    args = parser.parse_args(argv)
    with open(args.results) as f:
        result = json.load(f)
    paths = make_plots(result, args.out_dir or osp.dirname(osp.abspath(args.results)))
    for p in paths:
        print(p)
    return paths


if __name__ == '__main__':
    main()
