"""ADE20K (SceneParsing, 150 classes) pixel statistics of the DisAlign paper.

Appendix Table 16 of the paper lists, for each of the 150 classes, its share
of the training pixels (after ADE20K's ``objectInfo150``) and its group:
``Head`` above 1 %, ``Body`` from 0.1 % to 1 %, ``Tail`` below 0.1 %. The
table below is that table, read column by column; its order is the label
order of mmseg's :class:`~mmseg.datasets.ADE20KDataset` (checked in the tests;
mmseg spells class 7 ``'bed '`` with a trailing space).

Notes on the printed table, kept as printed:

* the ratios are rounded to 4 decimals and sum to 0.9271 (the rest is the
  unlabeled class 0, which mmseg drops with ``reduce_zero_label``);
* ``'swivel chair'`` is printed as 0.001 but grouped ``Tail``: its exact
  ratio is just below 0.1 %. The groups are therefore stored as printed,
  not recomputed from the rounded ratios;
* ``'field'`` is printed as 0.004, below the next class (``'armchair'``,
  0.0044) although the table is sorted; that row of the text has lost its
  commas too, so a digit was probably lost as well. The group (``Body``) is
  not affected, and the GRW weight of that one class would change by less
  than 4 % at rho 0.3.
"""
from typing import Dict, List, Sequence, Tuple

from ..engine.class_stats import ClassCounts

#: (class name as printed in the paper, pixel ratio, group H/B/T), label order.
ADE20K_TABLE16: Tuple[Tuple[str, float, str], ...] = (
    ('wall', 0.1576, 'H'),
    ('building', 0.1072, 'H'),
    ('sky', 0.0878, 'H'),
    ('floor', 0.0621, 'H'),
    ('tree', 0.048, 'H'),
    ('ceiling', 0.045, 'H'),
    ('road', 0.0398, 'H'),
    ('bed', 0.0231, 'H'),
    ('windowpane', 0.0198, 'H'),
    ('grass', 0.0183, 'H'),
    ('cabinet', 0.0181, 'H'),
    ('sidewalk', 0.0166, 'H'),
    ('person', 0.016, 'H'),
    ('earth', 0.0151, 'H'),
    ('door', 0.0118, 'H'),
    ('table', 0.011, 'H'),
    ('mountain', 0.0109, 'H'),
    ('plant', 0.0104, 'H'),
    ('curtain', 0.0104, 'H'),
    ('chair', 0.0103, 'H'),
    ('car', 0.0098, 'B'),
    ('water', 0.0074, 'B'),
    ('painting', 0.0067, 'B'),
    ('sofa', 0.0065, 'B'),
    ('shelf', 0.0061, 'B'),
    ('house', 0.006, 'B'),
    ('sea', 0.0053, 'B'),
    ('mirror', 0.0052, 'B'),
    ('rug', 0.0046, 'B'),
    ('field', 0.004, 'B'),
    ('armchair', 0.0044, 'B'),
    ('seat', 0.0044, 'B'),
    ('fence', 0.0033, 'B'),
    ('desk', 0.0031, 'B'),
    ('rock', 0.003, 'B'),
    ('wardrobe', 0.0027, 'B'),
    ('lamp', 0.0026, 'B'),
    ('bathtub', 0.0024, 'B'),
    ('railing', 0.0024, 'B'),
    ('cushion', 0.0023, 'B'),
    ('base', 0.0023, 'B'),
    ('box', 0.0022, 'B'),
    ('column', 0.0022, 'B'),
    ('signboard', 0.002, 'B'),
    ('chest of drawers', 0.0019, 'B'),
    ('counter', 0.0019, 'B'),
    ('sand', 0.0018, 'B'),
    ('sink', 0.0018, 'B'),
    ('skyscraper', 0.0018, 'B'),
    ('fireplace', 0.0018, 'B'),
    ('refrigerator', 0.0018, 'B'),
    ('grandstand', 0.0018, 'B'),
    ('path', 0.0018, 'B'),
    ('stairs', 0.0017, 'B'),
    ('runway', 0.0017, 'B'),
    ('case', 0.0017, 'B'),
    ('pool table', 0.0017, 'B'),
    ('pillow', 0.0017, 'B'),
    ('screen door', 0.0015, 'B'),
    ('stairway', 0.0015, 'B'),
    ('river', 0.0015, 'B'),
    ('bridge', 0.0015, 'B'),
    ('bookcase', 0.0014, 'B'),
    ('blind', 0.0014, 'B'),
    ('coffee table', 0.0014, 'B'),
    ('toilet', 0.0014, 'B'),
    ('flower', 0.0014, 'B'),
    ('book', 0.0013, 'B'),
    ('hill', 0.0013, 'B'),
    ('bench', 0.0013, 'B'),
    ('countertop', 0.0012, 'B'),
    ('stove', 0.0012, 'B'),
    ('palm', 0.0012, 'B'),
    ('kitchen island', 0.0012, 'B'),
    ('computer', 0.0011, 'B'),
    ('swivel chair', 0.001, 'T'),
    ('boat', 0.0009, 'T'),
    ('bar', 0.0009, 'T'),
    ('arcade machine', 0.0009, 'T'),
    ('hovel', 0.0009, 'T'),
    ('bus', 0.0009, 'T'),
    ('towel', 0.0008, 'T'),
    ('light', 0.0008, 'T'),
    ('truck', 0.0008, 'T'),
    ('tower', 0.0008, 'T'),
    ('chandelier', 0.0008, 'T'),
    ('awning', 0.0007, 'T'),
    ('streetlight', 0.0007, 'T'),
    ('booth', 0.0007, 'T'),
    ('television receiver', 0.0007, 'T'),
    ('airplane', 0.0007, 'T'),
    ('dirt track', 0.0007, 'T'),
    ('apparel', 0.0007, 'T'),
    ('pole', 0.0006, 'T'),
    ('land', 0.0006, 'T'),
    ('bannister', 0.0006, 'T'),
    ('escalator', 0.0006, 'T'),
    ('ottoman', 0.0006, 'T'),
    ('bottle', 0.0006, 'T'),
    ('buffet', 0.0006, 'T'),
    ('poster', 0.0006, 'T'),
    ('stage', 0.0006, 'T'),
    ('van', 0.0006, 'T'),
    ('ship', 0.0006, 'T'),
    ('fountain', 0.0005, 'T'),
    ('conveyer belt', 0.0005, 'T'),
    ('canopy', 0.0005, 'T'),
    ('washer', 0.0005, 'T'),
    ('plaything', 0.0005, 'T'),
    ('swimming pool', 0.0005, 'T'),
    ('stool', 0.0005, 'T'),
    ('barrel', 0.0005, 'T'),
    ('basket', 0.0005, 'T'),
    ('waterfall', 0.0005, 'T'),
    ('tent', 0.0005, 'T'),
    ('bag', 0.0005, 'T'),
    ('minibike', 0.0005, 'T'),
    ('cradle', 0.0005, 'T'),
    ('oven', 0.0005, 'T'),
    ('ball', 0.0005, 'T'),
    ('food', 0.0005, 'T'),
    ('step', 0.0004, 'T'),
    ('tank', 0.0004, 'T'),
    ('trade name', 0.0004, 'T'),
    ('microwave', 0.0004, 'T'),
    ('pot', 0.0004, 'T'),
    ('animal', 0.0004, 'T'),
    ('bicycle', 0.0004, 'T'),
    ('lake', 0.0004, 'T'),
    ('dishwasher', 0.0004, 'T'),
    ('screen', 0.0004, 'T'),
    ('blanket', 0.0004, 'T'),
    ('sculpture', 0.0004, 'T'),
    ('hood', 0.0004, 'T'),
    ('sconce', 0.0003, 'T'),
    ('vase', 0.0003, 'T'),
    ('traffic light', 0.0003, 'T'),
    ('tray', 0.0003, 'T'),
    ('ashcan', 0.0003, 'T'),
    ('fan', 0.0003, 'T'),
    ('pier', 0.0003, 'T'),
    ('crt screen', 0.0003, 'T'),
    ('plate', 0.0003, 'T'),
    ('monitor', 0.0003, 'T'),
    ('bulletin board', 0.0003, 'T'),
    ('shower', 0.0003, 'T'),
    ('radiator', 0.0003, 'T'),
    ('glass', 0.0002, 'T'),
    ('clock', 0.0002, 'T'),
    ('flag', 0.0002, 'T'),
)

_GROUP_NAMES = {'H': 'head', 'B': 'body', 'T': 'tail'}
ADE20K_SOURCE = 'DisAlign paper (CVPR 2021), appendix Table 16: ADE20K pixel ratios'


def ade20k_class_names() -> List[str]:
    """The 150 class names as the paper prints them (no trailing spaces)."""
    return [name for name, _, _ in ADE20K_TABLE16]


def ade20k_pixel_ratios() -> List[float]:
    """The 150 training-pixel ratios of Table 16, in label order."""
    return [ratio for _, ratio, _ in ADE20K_TABLE16]


def ade20k_groups() -> Dict[str, List[int]]:
    """Head / Body / Tail class indices of Table 16 (20 / 55 / 75 classes)."""
    groups: Dict[str, List[int]] = {'head': [], 'body': [], 'tail': []}
    for idx, (_, _, grp) in enumerate(ADE20K_TABLE16):
        groups[_GROUP_NAMES[grp]].append(idx)
    return groups


def ade20k_class_counts() -> ClassCounts:
    """Table 16 as :class:`~disalign_mm.engine.class_stats.ClassCounts`.

    The counts are the ratios (unit ``'pixels'``): the GRW weights and the
    Head/Body/Tail split depend on ratios only.
    """
    return ClassCounts(counts=ade20k_pixel_ratios(), classes=ade20k_class_names(),
                       unit='pixels', source=ADE20K_SOURCE)


def is_ade20k_table(counts: ClassCounts) -> bool:
    """Whether ``counts`` are Table 16 itself (:func:`ade20k_class_counts`),
    whose groups are the printed ones, not the thresholds over its rounded
    ratios."""
    return counts.counts == [float(r) for r in ade20k_pixel_ratios()]


def is_ade20k_classes(classes: Sequence[str]) -> bool:
    """Whether ``classes`` are ADE20K's 150 classes in the label order of
    Table 16 (surrounding whitespace ignored: mmseg writes ``'bed '``)."""
    if classes is None or len(classes) != len(ADE20K_TABLE16):
        return False
    return all(str(a).strip() == b for a, b in zip(classes, ade20k_class_names()))
