"""The tables "Every stage-2 config" and "Every post-hoc config" of
docs/recipes.md, read back, and the same rows recomputed from the resolved
configs.

``python tests/test_configs/recipes.py`` prints the rows of every shipped
stage-2 and post-hoc config (paste them between the table markers after a
deliberate recipe change; the tests then hold the configs to them).
"""
import copy
import functools
import glob
import os.path as osp
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
RECIPES = osp.join(REPO, 'docs', 'recipes.md')
BEGIN, END = '<!-- stage2-table:begin -->', '<!-- stage2-table:end -->'
COLUMNS = ('config', 'dataset', 'sampler', 'batch', 'schedule', 'lr', 'rho', 'trains')
POSTHOC_MARKERS = ('<!-- posthoc-table:begin -->', '<!-- posthoc-table:end -->')
POSTHOC_COLUMNS = ('config', 'stage 1', 'classifier', 'strength', 'counts')
HOSTS = {
    'cls': ('imagenet_lt', 'inaturalist2018', 'places_lt', 'fashion_mnist_lt'),
    'seg': ('ade20k', ),
    'det': ('lvis_v1', 'lvis_v05'),
}
# stage-2 configs (DisAlign and the trained peers) start with these
STAGE2_PREFIXES = ('disalign_', 'crt_', 'lws_')
# the post-hoc peers (test-only configs over a stage-1 checkpoint)
POSTHOC_PREFIXES = ('norcal_', 'logit-adjust_', 'tau-norm_')
GRW_LOSSES = ('GRWCrossEntropyLoss', 'SegGRWCrossEntropyLoss')


def _configs(host: str, prefixes) -> List[str]:
    out = []
    for folder in HOSTS[host]:
        for p in glob.glob(osp.join(CONFIGS, folder, '*.py')):
            if osp.basename(p).startswith(prefixes):
                out.append(osp.relpath(p, CONFIGS))
    return sorted(out)


def stage2_configs(host: str) -> List[str]:
    """Paths under configs/ (``folder/name.py``) of a host's stage-2 configs."""
    return _configs(host, STAGE2_PREFIXES)


def posthoc_configs(host: str) -> List[str]:
    """Paths under configs/ of a host's post-hoc (test-only) configs."""
    return _configs(host, POSTHOC_PREFIXES)


def table_rows(markers=(BEGIN, END), columns=COLUMNS) -> Dict[str, Dict[str, str]]:
    """``{config: {column: text}}`` of a table in docs/recipes.md (default:
    "Every stage-2 config")."""
    begin, end = markers
    with open(RECIPES) as f:
        text = f.read()
    if text.count(begin) != 1 or text.count(end) != 1:
        raise ValueError(f'{RECIPES}: expected one {begin} ... {end} block')
    block = text[text.index(begin) + len(begin):text.index(end)]
    rows = {}
    for line in block.strip().splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if cells[0] == columns[0] or set(cells[0]) <= {'-'}:
            continue  # header and rule
        if len(cells) != len(columns):
            raise ValueError(f'{RECIPES}: row with {len(cells)} cells: {line}')
        row = dict(zip(columns, (c.strip('`') for c in cells)))
        if row['config'] in rows:
            raise ValueError(f'{RECIPES}: {row["config"]} listed twice')
        rows[row['config']] = row
    return rows


def posthoc_rows() -> Dict[str, Dict[str, str]]:
    """The table "Every post-hoc config" of docs/recipes.md."""
    return table_rows(POSTHOC_MARKERS, POSTHOC_COLUMNS)


def _k(n: int) -> str:
    return f'{n // 1000}k' if n >= 1000 and n % 1000 == 0 else str(n)


def _schedule(cfg) -> str:
    tc = cfg.train_cfg
    if 'max_epochs' in tc:
        length, n = f"{tc['max_epochs']} epochs", tc['max_epochs']
    else:
        length, n = f"{_k(tc['max_iters'])} iters", tc['max_iters']
    scheds = cfg.param_scheduler
    scheds = list(scheds) if isinstance(scheds, (list, tuple)) else [scheds]
    parts = [length]
    for s in scheds:
        begin, end = s.get('begin', 0), s.get('end', n)
        if s['type'] == 'LinearLR':
            parts.append(f'warm-up {_k(end - begin)}')
            continue
        if (begin, end) != (0, n):
            parts.append(f"{s['type']} {begin}-{end}")
            continue
        if s['type'] == 'CosineAnnealingLR' and s['T_max'] == end - begin:
            parts.append('cosine')
        elif s['type'] == 'PolyLR':
            parts.append('poly')
        elif s['type'] == 'MultiStepLR' and s.get('gamma', 0.1) == 0.1:
            parts.append('step ' + ', '.join(_k(m) for m in s['milestones']))
        else:
            parts.append(str(s['type']))
    return ', '.join(parts)


def _grw_rhos(node) -> List[float]:
    out = []
    if isinstance(node, dict):
        if node.get('type') in GRW_LOSSES:
            out.append(node['rho'])
        for v in node.values():
            out += _grw_rhos(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            out += _grw_rhos(v)
    return out


def derive(cfg) -> Dict[str, str]:
    """The row of a resolved stage-2 config (``config`` left out)."""
    dl = cfg.train_dataloader
    per_gpu = dl['batch_size']
    total = cfg.get('auto_scale_lr', {}).get('base_batch_size', per_gpu)
    if total % per_gpu:
        raise ValueError(f'total batch {total} is no multiple of the batch per GPU {per_gpu}')
    rhos = sorted(set(_grw_rhos(cfg.model.to_dict())))
    hooks = [h for h in cfg.custom_hooks if h['type'] == 'DisAlignFreezeHook']
    if len(hooks) != 1:
        raise ValueError('a stage-2 config has one DisAlignFreezeHook')
    hook = hooks[0]
    if hook.get('trainable') is None:
        trains = 'calibration'
    else:
        trains = ', '.join(hook['trainable'])
        if hook.get('reinit'):
            trains += ' (re-initialised)'
    return dict(
        dataset=dl['dataset']['type'],
        sampler=dl['sampler']['type'],
        batch=f'{total} ({total // per_gpu}x{per_gpu})',
        schedule=_schedule(cfg),
        lr=f"{cfg.optim_wrapper['optimizer']['lr']:g}",
        rho=', '.join(f'{r:g}' for r in rhos) or '-',
        trains=trains)


def _classifiers(cfg) -> List[dict]:
    """The post-hoc classifier configs of a resolved config: every bbox
    head's ``cls_predictor_cfg`` (mmdet), the decode head (mmseg) or the
    head (mmpretrain)."""
    model = cfg.model
    if 'roi_head' in model:
        heads = model.roi_head.bbox_head
        heads = list(heads) if isinstance(heads, (list, tuple)) else [heads]
        return [h.cls_predictor_cfg for h in heads]
    return [model.get('decode_head') or model.head]


def stage1_of(config: str) -> str:
    """The file name of the ``_base_`` a peer's config names (its stage 1)."""
    import re
    with open(osp.join(CONFIGS, config)) as f:
        return re.search(r"^_base_ = \[?'\./([^']+)'", f.read(), re.M).group(1)


def derive_posthoc(config: str, cfg) -> Dict[str, str]:
    """The row of a post-hoc config (``config`` left out): its stage 1 (the
    ``_base_`` it names), the classifier types, the strength, the counts."""
    base = stage1_of(config)
    layers = _classifiers(cfg)
    types = sorted({c['type'] for c in layers})
    strengths = set()
    for c in layers:
        for name in ('gamma', 'tau'):
            if name in c:
                strengths.add(f'{name} {c[name]:g}')
    hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] == 'ClassCountsHook']
    if len(hooks) > 1:
        raise ValueError('a post-hoc config has at most one ClassCountsHook')
    if not hooks:
        counts = '-'
    else:
        src = hooks[0].get('source') or 'labels'
        counts = src if isinstance(src, str) else ', '.join(
            f'{k}={v}' if k != 'type' else v for k, v in src.items())
    return {'stage 1': base,
            'classifier': ', '.join(types) + (f' (x{len(layers)})' if len(layers) > 1 else ''),
            'strength': ', '.join(sorted(strengths)) or '-', 'counts': counts}


def render_posthoc(configs: List[str]) -> str:
    lines = ['| ' + ' | '.join(POSTHOC_COLUMNS) + ' |', '|' + '---|' * len(POSTHOC_COLUMNS)]
    for c in configs:
        row = dict(derive_posthoc(c, load(c)), config=c)
        lines.append('| ' + ' | '.join(f'`{row[k]}`' if k in ('config', 'stage 1') else row[k]
                                       for k in POSTHOC_COLUMNS) + ' |')
    return '\n'.join(lines)


@functools.lru_cache(maxsize=None)
def _parsed(config: str):
    from mmengine.config import Config
    return Config.fromfile(osp.join(CONFIGS, config))


def load(config: str):
    """The resolved config (a copy: parsed once per test session, since the
    peers' tests resolve the same stage-1 configs again)."""
    return copy.deepcopy(_parsed(config))


def render(configs: List[str]) -> str:
    lines = ['| ' + ' | '.join(COLUMNS) + ' |', '|' + '---|' * len(COLUMNS)]
    for c in configs:
        row = dict(derive(load(c)), config=c)
        lines.append('| ' + ' | '.join(f'`{row[k]}`' if k in ('config', 'trains') and
                                       row[k] != 'calibration' else row[k]
                                       for k in COLUMNS) + ' |')
    return '\n'.join(lines)


if __name__ == '__main__':
    print(render([c for host in HOSTS for c in stage2_configs(host)]))
    print()
    print(render_posthoc([c for host in ('seg', 'det') for c in posthoc_configs(host)]))
