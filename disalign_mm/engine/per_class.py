"""Per-class results of an evaluation: one JSON format for all three hosts.

Every long-tail metric of the plugin (``LongTailAccuracy``,
``HeadBodyTailIoUMetric``, the detection metrics) writes what it measured per
class in this format, so one tool (``tools/long_tail_diagnostics.py``) can
plot any of them against the training frequency and compare two runs::

    {
      "format": "disalign_mm/per-class@1",
      "task": "classification",          # | "segmentation" | "detection"
      "classes": ["cat", "dog", ...],     # K names, or null
      "train_counts": [5000, 12, ...],    # K training counts, or null
      "count_unit": "images",             # images | instances | pixels, or null
      "per_class": {"accuracy": [...]},   # name -> K values in %, null = undefined
      "primary": "accuracy",              # the per_class entry plotted by default
      "groups": {"many": [0, 3], ...},    # group -> class indices
      "metrics": {"top1": 71.2, ...},     # what the metric returned
      ...                                 # task-specific extras (reliability, disalign, ...)
    }

What the DisAlign calibration did in the evaluated epoch (``"disalign"``:
the confidence's distribution, the decisions changed; see
:class:`~disalign_mm.engine.DisAlignMonitorHook`) is part of the record
when the run has it: the monitor publishes it in mmengine's message hub
(:data:`CALIBRATION_INFO`) before the metrics compute, and
:func:`keep_per_class` puts it into the record before the file is written,
so each file has one writer.
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from .class_stats import UNITS
from .utils import read_json

FORMAT = 'disalign_mm/per-class@1'
TASKS = ('classification', 'segmentation', 'detection')
#: the message-hub runtime info where DisAlignMonitorHook publishes what the
#: calibration did in the current val/test epoch (None outside of one)
CALIBRATION_INFO = 'disalign_mm/calibration'


def _clean(values: Sequence) -> List[Optional[float]]:
    """Floats, with NaN / None as None (JSON has no NaN)."""
    out = []
    for v in values:
        v = None if v is None else float(v)
        out.append(None if v is None or math.isnan(v) else v)
    return out


def per_class_record(task: str,
                     per_class: Dict[str, Sequence],
                     groups: Dict[str, Sequence[int]],
                     metrics: Dict[str, float],
                     classes: Optional[Sequence[str]] = None,
                     train_counts: Optional[Sequence[float]] = None,
                     count_unit: Optional[str] = None,
                     primary: Optional[str] = None,
                     **extra) -> dict:
    """A validated per-class record (see the module docstring).

    Args:
        task (str): One of :data:`TASKS`.
        per_class (dict): Metric name -> one value per class (in %; NaN or
            None where undefined, e.g. a class absent from the test set).
        groups (dict): Group name -> class indices.
        metrics (dict): The metric's summary values.
        classes (Sequence[str], optional): Class names.
        train_counts (Sequence[float], optional): Training counts per class.
        count_unit (str, optional): Unit of ``train_counts``.
        primary (str, optional): The ``per_class`` entry plotted by default.
            Defaults to the first one.
        **extra: Task-specific entries (JSON-serialisable).

    Raises:
        ValueError: Inconsistent lengths, an unknown task or unit, a group
            index out of range.
    """
    if task not in TASKS:
        raise ValueError(f'task must be one of {TASKS}, got {task!r}')
    if not per_class:
        raise ValueError('per_class is empty: nothing was measured per class')
    lengths = {k: len(v) for k, v in per_class.items()}
    num_classes = next(iter(lengths.values()))
    if len(set(lengths.values())) != 1:
        raise ValueError(f'per-class lists of different lengths: {lengths}')
    for what, seq in (('classes', classes), ('train_counts', train_counts)):
        if seq is not None and len(seq) != num_classes:
            raise ValueError(f'{what} has {len(seq)} entries but the per-class results '
                             f'have {num_classes}')
    if count_unit is not None and count_unit not in UNITS:
        raise ValueError(f'count_unit must be one of {UNITS}, got {count_unit!r}')
    primary = primary or next(iter(per_class))
    if primary not in per_class:
        raise ValueError(f'primary {primary!r} is not one of {list(per_class)}')
    clean_groups = {}
    for name, idx in groups.items():
        idx = [int(i) for i in idx]
        bad = [i for i in idx if not 0 <= i < num_classes]
        if bad:
            raise ValueError(f'group {name!r} has class indices out of range 0..'
                             f'{num_classes - 1}: {bad[:5]}')
        clean_groups[str(name)] = idx
    record = dict(
        format=FORMAT, task=task,
        classes=None if classes is None else [str(c) for c in classes],
        train_counts=None if train_counts is None else [float(c) for c in train_counts],
        count_unit=count_unit if train_counts is not None else None,
        per_class={str(k): _clean(v) for k, v in per_class.items()},
        primary=primary, groups=clean_groups,
        metrics={str(k): _clean([v])[0] for k, v in metrics.items()
                 if isinstance(v, (int, float)) or v is None})
    record.update(extra)
    return record


def resolve_out_path(out_file: Optional[str], out_dir: Optional[str], who: str) -> Optional[str]:
    """Where a metric writes its per-class JSON: ``out_file`` as is when
    absolute, else under ``out_dir``, else beside the current
    :class:`~mmengine.logging.MMLogger`'s log file (a Runner's ``log_dir``).
    None (with a warning naming ``who`` and the fix) when there is no such
    place, or when ``out_file`` is None (writing disabled, no warning)."""
    if not out_file:
        return None
    if osp.isabs(out_file):
        return out_file
    if out_dir is None:
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
        if logger.log_file:
            out_dir = osp.dirname(osp.abspath(logger.log_file))
        else:
            logger.warning(
                f'{who}: per-class results not written: out_file={out_file!r} is relative '
                'and there is neither an out_dir nor a log file to put it beside. Set '
                'out_dir (or an absolute out_file), or out_file=None to write none.')
            return None
    return osp.join(out_dir, out_file)


def write_per_class(record: dict, out_file: Optional[str], out_dir: Optional[str],
                    who: str) -> Optional[str]:
    """Write ``record`` (:func:`per_class_record`) to the path
    :func:`resolve_out_path` gives, atomically, and log it; returns the path
    written (None when none)."""
    path = resolve_out_path(out_file, out_dir, who)
    if path is None:
        return None
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump(record, f, indent=1)
    os.replace(path + '.tmp', path)
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().info(f'{who}: per-class results written to {path}')
    return path


def calibration_report() -> Optional[dict]:
    """What the DisAlign calibration did in the current val/test epoch, as
    :class:`~disalign_mm.engine.DisAlignMonitorHook` published it in the
    current message hub; None when there is no such report."""
    from mmengine.logging import MessageHub
    report = MessageHub.get_current_instance().get_info(CALIBRATION_INFO)
    return dict(report) if isinstance(report, dict) else None


def keep_per_class(metric, record: dict, who: str) -> Optional[str]:
    """What every long-tail metric does with its record: add the calibration
    report of the epoch (:func:`calibration_report`, as ``"disalign"``) when
    there is one, keep it as ``metric.per_class``, write it to the metric's
    ``out_file`` / ``out_dir`` (:func:`write_per_class`) and record the path
    as ``metric.per_class_file``. Returns the path written (None when none)."""
    report = calibration_report()
    if report is not None:
        record.setdefault('disalign', report)
    metric.per_class = record
    path = write_per_class(record, metric.out_file, metric.out_dir, who)
    if path is not None:
        metric.per_class_file = path
    return path


def load_per_class(path: str) -> dict:
    """Read a per-class JSON and check it (format, lengths), with an error
    naming the file and the problem."""
    data = read_json(path, f'per-class results {path!r} do not exist: a test run with a '
                     'disalign_mm long-tail metric writes them (see its out_file)')
    if not isinstance(data, dict) or data.get('format') != FORMAT:
        raise ValueError(f'{path!r} is not a per-class results file: expected "format": '
                         f'"{FORMAT}" (written by LongTailAccuracy, HeadBodyTailIoUMetric or '
                         'the detection metrics of disalign_mm)')
    try:
        known = ('task', 'per_class', 'groups', 'metrics', 'classes', 'train_counts',
                 'count_unit', 'primary')
        extra = {k: v for k, v in data.items() if k not in known + ('format', )}
        return per_class_record(**{k: data.get(k) for k in known if k in data}, **extra)
    except (TypeError, ValueError) as e:
        raise ValueError(f'{path!r}: {e}') from e
