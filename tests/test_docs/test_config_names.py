"""What the documentation says of the shipped configs is what they are: the
three forms of their names (docs/how_it_works.md, "The shipped configs"),
and the Fashion-MNIST-LT numbers of the README, the metafile and the page
that prints them (make demo's one measured run)."""
import glob
import os.path as osp
import re

import yaml

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '*', '*.py')))
POSTHOC = ('tau-norm_', 'logit-adjust_', 'norcal_')
#: {GPUs}xb{batch}-{schedule}_{data set}: the trained classification and
#: segmentation configs
TRAINED = re.compile(r'^[\w.-]+_\d+xb\d+-[\w.-]+_[\w.-]+$')
#: {algorithm}_{backbone}_{data set}: the post-hoc peers
POSTHOC_NAME = re.compile(r'^(tau-norm|logit-adjust|norcal)_[\w.-]+_[\w.-]+$')
#: mmdet's LVIS names: {model}_{backbone}_fpn_[cosine_]{sampling}_{schedule}_{data set};
#: the post-hoc NorCal without sampling and schedule
LVIS = re.compile(r'^((disalign_)?(cascade-)?mask-rcnn_(r50|r101|x101-32x4d)_fpn_(cosine_)?'
                  r'(sample1e-3_ms-(1x|2x)|ms-9k)'
                  r'|crt_(cascade-)?mask-rcnn_(r50|r101|x101-32x4d)_fpn_(cosine_)?cas_ms-9k'
                  r'|norcal_(cascade-)?mask-rcnn_(r50|r101|x101-32x4d)_fpn(_cosine)?)'
                  r'_lvis-(v1|v0\.5)$')


def _names(folder_glob):
    return [osp.splitext(osp.basename(c))[0] for c in CONFIGS
            if re.fullmatch(folder_glob, osp.basename(osp.dirname(c)))]


def test_every_config_has_one_of_the_documented_forms():
    assert len(CONFIGS) > 50
    for name in _names(r'(?!lvis).*'):
        if name.startswith(POSTHOC):
            assert POSTHOC_NAME.match(name) and 'xb' not in name, name
        else:
            assert TRAINED.match(name), name
    lvis = _names(r'lvis.*')
    assert len(lvis) == 64  # stage 1, DisAlign, cRT, NorCal: 2 versions x 4 models x 2
    for name in lvis:
        assert LVIS.match(name) and not re.search(r'\d+xb\d+', name), name


def test_a_stage2_name_is_disalign_and_its_stage1_name():
    """``disalign_`` + the stage-1 name with the stage-1 schedule replaced by
    stage 2's: every DisAlign config has its stage 1 in the same folder."""
    stage2 = [c for c in CONFIGS if osp.basename(c).startswith('disalign_')]
    assert len(stage2) >= 30
    for c in stage2:
        folder, name = osp.dirname(c), osp.splitext(osp.basename(c))[0]
        m = LVIS.match(name)
        if m:
            stage1 = name[len('disalign_'):].replace('_ms-9k_', '_sample1e-3_ms-*_')
        else:
            m = re.match(r'^disalign_(.+)_\d+xb\d+-[^_]+_(.+)$', name)
            assert m, name
            stage1 = f'{m.group(1)}_*xb*_{m.group(2)}'
        assert glob.glob(osp.join(folder, stage1 + '.py')), (name, stage1)


def test_the_documented_form_is_what_the_page_says():
    page = open(osp.join(ROOT, 'docs', 'how_it_works.md')).read()
    assert '`{algorithm}_{backbone}_{...}_{GPUs}xb{batch}-{schedule}_{data set}`' in page
    assert '`{algorithm}_{backbone}_{data set}`' in page
    assert 'no `{GPUs}xb{batch}`' in page


def _demo_rows(text):
    """{'stage 1': [Many, Medium, Few, All], 'DisAlign': [...]} of the demo
    table as printed."""
    rows = {}
    for label, key in (('stage 1 (cross entropy)', 'stage 1'), ('DisAlign (stage 2)',
                                                                'DisAlign')):
        m = re.search(re.escape(label) + r'\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)', text)
        rows[key] = [float(x) for x in m.groups()]
    return rows


def test_the_demo_numbers_agree_everywhere():
    readme = _demo_rows(open(osp.join(ROOT, 'README.md')).read())
    page = _demo_rows(open(osp.join(ROOT, 'docs', 'get_started.md')).read())
    assert readme == page
    meta = yaml.safe_load(open(osp.join(ROOT, 'configs', 'fashion_mnist_lt', 'metafile.yml')))
    models = {m['Name']: m for m in meta['Models']}
    for name, key in (('resnet-s_1xb128-coslr-8e_fmnist-lt', 'stage 1'),
                      ('disalign_resnet-s_1xb128-coslr-6e_fmnist-lt', 'DisAlign')):
        metrics = models[name]['Results'][0]['Metrics']
        assert [metrics[k] for k in ('Many', 'Medium', 'Few', 'Top 1 Accuracy')] == readme[key]
        assert 'make demo' in models[name]['Metadata']['Results Source']
    # the peers' configs list none: their values are chosen per seed by make benchmark
    assert all('Results' not in m for n, m in models.items()
               if n.startswith(('crt_', 'lws_') + POSTHOC))
    header = open(osp.join(ROOT, 'configs', 'fashion_mnist_lt', 'metafile.yml')).read()
    assert "paper's numbers" not in header and 'measured here' in header
