"""tools/seg_pixel_counts.py and disalign_mm.seg.pixel_counts on the fixture."""
import contextlib
import importlib.util
import io
import json
import os
import os.path as osp
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'seg_pixel_counts.py')
CONFIG = osp.join(REPO, 'configs', 'ade20k', 'fcn_r50-d8_4xb4-160k_ade20k-512x512.py')
# by hand from conftest.train_masks() (ADE20K labels shifted by reduce_zero_label)
EXPECTED = {0: 752, 1: 124, 2: 620, 4: 224, 9: 384, 149: 48}
IGNORED = 152


def load_tool():
    spec = importlib.util.spec_from_file_location('seg_pixel_counts_tool', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_tool(data_root, out, *extra):
    """Run the tool in-process (the imports are the slow part of a
    subprocess); return its stdout, or raise SystemExit on errors."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = load_tool().main([CONFIG, '--out', out, '--no-progress', '--cfg-options',
                               f'train_dataloader.dataset.data_root={data_root}', *extra])
    assert rc == 0
    return buf.getvalue()


@pytest.mark.slow  # runs the tool in a subprocess
def test_tool_command_line(ade_root, tmp_path):
    out = str(tmp_path / 'counts.json')
    res = subprocess.run(
        [sys.executable, TOOL, CONFIG, '--out', out, '--cfg-options',
         f'train_dataloader.dataset.data_root={ade_root}'],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env=dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', '')))
    assert res.returncode == 0, res.stderr
    assert '3/3' in res.stdout  # the progress bar
    assert f'wrote {out}: 150 classes, 2,152 labelled pixels in 3 masks' in res.stdout
    assert json.loads(Path(out).read_text())['counts'][149] == 48


def test_tool_exact_counts_and_cache(ade_root, tmp_path):
    out = str(tmp_path / 'counts.json')
    assert f'wrote {out}' in run_tool(ade_root, out)
    data = json.loads(Path(out).read_text())
    assert data['format'] == 'disalign_mm/class-counts@1' and data['unit'] == 'pixels'
    assert len(data['counts']) == 150 and data['classes'][7] == 'bed '
    assert {i: c for i, c in enumerate(data['counts']) if c} == EXPECTED
    assert data['num_images'] == 3 and data['ignored_pixels'] == IGNORED
    # second run: cached
    assert f'read cached {out}' in run_tool(ade_root, out)
    assert f'wrote {out}' in run_tool(ade_root, out, '--force')
    # the loss reads the file
    from disalign_mm.engine.class_stats import load_class_counts
    assert load_class_counts(out, num_classes=150).counts[149] == 48


def test_reduce_zero_label_and_cache_invalidation(tmp_path, make_ade):
    from mmseg.datasets import BaseSegDataset

    import disalign_mm.seg  # noqa: F401
    from disalign_mm.seg import dataset_pixel_counts
    masks = {'x': np.array([[0, 1, 2], [2, 2, 255]], np.uint8)}
    root = make_ade(tmp_path / 'data', {'training': masks})

    def build(reduce_zero_label):
        return BaseSegDataset(
            data_root=root, metainfo=dict(classes=('a', 'b', 'c')), img_suffix='.jpg',
            seg_map_suffix='.png', reduce_zero_label=reduce_zero_label, pipeline=[],
            data_prefix=dict(img_path='images/training',
                             seg_map_path='annotations/training'))

    counts, cached = dataset_pixel_counts(build(False), progress=False)
    assert counts.counts == [1, 1, 3] and counts.extra['ignored_pixels'] == 1
    counts, _ = dataset_pixel_counts(build(True), progress=False)
    # 0 -> ignored, 1 -> 0, 2 -> 1, 255 stays ignored
    assert counts.counts == [1, 3, 0] and counts.extra['ignored_pixels'] == 2

    out = str(tmp_path / 'c.json')
    assert dataset_pixel_counts(build(False), out=out, progress=False)[1] is False
    assert dataset_pixel_counts(build(False), out=out, progress=False)[1] is True
    # another reduce_zero_label setting or a changed mask is a cache miss
    assert dataset_pixel_counts(build(True), out=out, progress=False)[1] is False
    time.sleep(0.01)
    Image.fromarray(np.zeros((2, 3), np.uint8)).save(
        osp.join(root, 'annotations', 'training', 'x.png'))
    counts, cached = dataset_pixel_counts(build(True), out=out, progress=False)
    assert not cached and counts.counts == [0, 0, 0] and counts.extra['ignored_pixels'] == 6


def test_out_of_range_labels_are_a_clear_error(tmp_path, make_ade):
    bad = {'a': np.full((4, 4), 1, np.uint8)}
    bad['a'][0, 0] = 152  # reduce_zero_label: 151 > 149
    root = make_ade(tmp_path / 'bad', {'training': bad})
    with pytest.raises(SystemExit) as exc:
        run_tool(root, str(tmp_path / 'o.json'))
    msg = str(exc.value)
    assert 'labels [151] are out of range for 150 classes' in msg
    assert 'a.png' in msg and 'reduce_zero_label=True' in msg
    assert not osp.exists(tmp_path / 'o.json')


def test_count_pixels_rejects_empty():
    from disalign_mm.seg import count_pixels
    with pytest.raises(ValueError, match='empty'):
        count_pixels([], 3)
