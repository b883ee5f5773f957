"""Per-class statistics: one small JSON format, a validating loader, groups.

The format (``disalign_mm/class-counts@1``)::

    {
      "format": "disalign_mm/class-counts@1",
      "classes": ["cat", "dog", ...],      # K names (may be null)
      "counts": [5000, 12, ...],           # K non-negative numbers
      "unit": "images",                    # images | instances | pixels
      "source": "ImageNet_LT_train.txt"    # free text: where counts came from
    }

The same counts drive the GRW loss (Eq. 11) and the Many/Medium/Few or
Head/Body/Tail groups of the metrics, so both always agree.
"""
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

from ..core.grw import Counts
from .utils import read_json

FORMAT = 'disalign_mm/class-counts@1'
UNITS = ('images', 'instances', 'pixels')

#: Decouple's Many / Medium / Few split on training images per class (paper
#: Tables 1, 3, 10): many above 100, few below 20.
MANY_THR = 100
FEW_THR = 20
#: The paper's Head / Body / Tail split on the share of training pixels
#: (appendix B, ADE20K): head above 1 %, tail below 0.1 %.
HEAD_THR = 0.01
TAIL_THR = 0.001
#: LVIS's split on training images per category (Gupta et al. 2019, Sec. 3):
#: rare 1-10 images, common 11-100, frequent more than 100.
RARE_THR = 10
FREQUENT_THR = 100


@dataclass
class ClassCounts:
    """Per-class counts of a training set.

    Args:
        counts (list[float]): One non-negative count per class.
        classes (list[str], optional): Class names, same length.
        unit (str): ``'images'``, ``'instances'`` or ``'pixels'``.
        source (str): Where the counts come from (file, tool, dataset).
    """
    counts: List[float]
    classes: Optional[List[str]] = None
    unit: str = 'images'
    source: str = ''
    extra: Dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = [float(c) for c in self.counts]
        if not self.counts:
            raise ValueError('class counts are empty')
        bad = [i for i, c in enumerate(self.counts) if not c >= 0 or c == float('inf')]
        if bad:
            raise ValueError(f'class counts must be finite and >= 0; classes '
                             f'{bad[:10]} are not ({self.source or "no source"})')
        if self.unit not in UNITS:
            raise ValueError(f'unit must be one of {UNITS}, got {self.unit!r}')
        if self.classes is not None:
            self.classes = [str(c) for c in self.classes]
            if len(self.classes) != len(self.counts):
                raise ValueError(
                    f'{len(self.classes)} class names but {len(self.counts)} '
                    f'counts ({self.source or "no source"})')

    @property
    def num_classes(self) -> int:
        return len(self.counts)

    @property
    def ratios(self) -> List[float]:
        total = sum(self.counts)
        if total <= 0:
            raise ValueError('class counts sum to zero')
        return [c / total for c in self.counts]

    def check(self,
              num_classes: Optional[int] = None,
              classes: Optional[Sequence[str]] = None,
              what: str = 'the model') -> 'ClassCounts':
        """Raise a clear error unless these counts describe ``num_classes``
        classes (and, when both sides have names, the same names in the same
        order). Returns self."""
        where = f' (from {self.source})' if self.source else ''
        if num_classes is not None and num_classes != self.num_classes:
            raise ValueError(
                f'class counts{where} have {self.num_classes} entries but '
                f'{what} has {num_classes} classes. Use counts of the same '
                'data set and label order, or recompute them from the '
                'training set.')
        if classes is not None and self.classes is not None:
            classes = [str(c) for c in classes]
            if len(classes) != self.num_classes:
                raise ValueError(
                    f'class counts{where} have {self.num_classes} entries but '
                    f'{what} has {len(classes)} classes')
            # surrounding whitespace is not a difference (mmseg: 'bed ')
            diff = [i for i, (a, b) in enumerate(zip(classes, self.classes))
                    if a.strip() != b.strip()]
            if diff:
                i = diff[0]
                raise ValueError(
                    f'class counts{where} do not match the class names of '
                    f'{what}: class {i} is {self.classes[i]!r} in the counts '
                    f'but {classes[i]!r} in {what} ({len(diff)} mismatches). '
                    'The counts must follow the same label order.')
        return self

    def to_dict(self) -> dict:
        d = dict(format=FORMAT, classes=self.classes, counts=self.counts,
                 unit=self.unit, source=self.source)
        d.update(self.extra)
        return d

    def dump(self, path: str) -> None:
        with open(path, 'w') as f:
            json.dump(self.to_dict(), f, indent=1)


def load_class_counts(path: str,
                      num_classes: Optional[int] = None,
                      classes: Optional[Sequence[str]] = None) -> ClassCounts:
    """Read a counts JSON and validate it (see :meth:`ClassCounts.check`)."""
    data = read_json(path, f'class counts file {path!r} does not exist. Compute it from the '
                     'training set (docs/class_counts.md), or give the counts in the '
                     'config.', what='class counts file ')
    if not isinstance(data, dict) or data.get('format') != FORMAT or 'counts' not in data:
        raise ValueError(f'{path!r} is not a class counts file: expected a JSON '
                         f'object with "format": "{FORMAT}" and "counts"')
    known = {'format', 'classes', 'counts', 'unit', 'source'}
    cc = ClassCounts(
        counts=data['counts'], classes=data.get('classes'),
        unit=data.get('unit', 'images'), source=data.get('source') or path,
        extra={k: v for k, v in data.items() if k not in known})
    return cc.check(num_classes, classes)


#: A :class:`ClassCounts` record or plain per-class numbers.
ClassCountsLike = Union[ClassCounts, Counts]


def as_class_counts(counts: ClassCountsLike, source: str = '') -> ClassCounts:
    """``counts`` itself when it is a :class:`ClassCounts`, else a validated
    one made of the numbers (a list, an array or a tensor)."""
    if isinstance(counts, ClassCounts):
        return counts
    if hasattr(counts, 'tolist'):  # numpy array, tensor
        counts = counts.tolist()
    return ClassCounts(list(counts), source=source)


def check_thresholds(low: float, high: float, low_name: str, high_name: str,
                     who: str = '') -> None:
    """Raise a one-line ValueError naming both thresholds unless ``low <= high``
    (``who``: the metric or function, as the error's prefix)."""
    if low > high:
        raise ValueError(f'{who + ": " if who else ""}{low_name} ({low}) must not exceed '
                         f'{high_name} ({high})')


def _split(values: Sequence[float], low: float, high: float, names: Sequence[str],
           low_inclusive: bool) -> Dict[str, List[int]]:
    """Indices of ``values`` above ``high``, at or below it down to ``low``,
    and below ``low`` (``low_inclusive``: at or below ``low``); ``names``
    highest group first."""
    hi, mid, lo = names

    def is_low(x: float) -> bool:
        return x <= low if low_inclusive else x < low

    return {
        hi: [i for i, x in enumerate(values) if x > high],
        mid: [i for i, x in enumerate(values) if x <= high and not is_low(x)],
        lo: [i for i, x in enumerate(values) if is_low(x)],
    }


def count_groups(counts: ClassCountsLike,
                 many_thr: float = MANY_THR,
                 few_thr: float = FEW_THR,
                 names: Sequence[str] = ('many', 'medium', 'few')) -> Dict[str, List[int]]:
    """Split classes by training count, the Decouple convention: ``many``
    has more than ``many_thr``, ``few`` fewer than ``few_thr``, ``medium``
    the rest (so 20..100 inclusive by default)."""
    check_thresholds(few_thr, many_thr, 'few_thr', 'many_thr')
    return _split(as_class_counts(counts).counts, few_thr, many_thr, names, False)


def frequency_groups(counts: ClassCountsLike,
                     rare_thr: float = RARE_THR,
                     frequent_thr: float = FREQUENT_THR,
                     names: Sequence[str] = ('rare', 'common', 'frequent')) -> Dict[str, List[int]]:
    """Split categories by training count, the LVIS convention: ``rare``
    has at most ``rare_thr``, ``frequent`` more than ``frequent_thr``,
    ``common`` the rest (defaults: rare 0-10, common 11-100, frequent > 100;
    a category without a training image is rare).

    Args:
        counts (ClassCounts | Sequence[float]): Training count per category.
        rare_thr (float): Defaults to 10.
        frequent_thr (float): Defaults to 100.
        names (Sequence[str]): The three group names, rarest first.
            Defaults to ``('rare', 'common', 'frequent')``.

    Returns:
        dict: Group name -> category indices.
    """
    check_thresholds(rare_thr, frequent_thr, 'rare_thr', 'frequent_thr')
    groups = _split(as_class_counts(counts).counts, rare_thr, frequent_thr, names[::-1], True)
    return {k: groups[k] for k in names}


def ratio_groups(counts: ClassCountsLike,
                 head_thr: float = HEAD_THR,
                 tail_thr: float = TAIL_THR,
                 names: Sequence[str] = ('head', 'body', 'tail')) -> Dict[str, List[int]]:
    """Split classes by their share of the total (pixels for segmentation):
    ``head`` above ``head_thr`` (1 %), ``tail`` below ``tail_thr`` (0.1 %),
    ``body`` in between (the paper's ADE20K split)."""
    check_thresholds(tail_thr, head_thr, 'tail_thr', 'head_thr')
    c = as_class_counts(counts).counts
    total = sum(c)
    if total <= 0:
        raise ValueError('class counts sum to zero')
    return _split([n / total for n in c], tail_thr, head_thr, names, False)


def explicit_groups(groups: Dict[str, Sequence[Union[int, str]]],
                    num_classes: int,
                    classes: Optional[Sequence[str]] = None) -> Dict[str, List[int]]:
    """Validate user-given groups: class indices (or names, when ``classes``
    is given) in range."""
    out = {}
    for name, members in groups.items():
        idx = []
        for m in members:
            if isinstance(m, str):
                if classes is None or m not in classes:
                    raise ValueError(f'group {name!r}: unknown class {m!r}')
                m = list(classes).index(m)
            if not 0 <= int(m) < num_classes:
                raise ValueError(f'group {name!r}: class index {m} out of range '
                                 f'0..{num_classes - 1}')
            idx.append(int(m))
        out[name] = idx
    return out
