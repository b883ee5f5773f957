"""The second-stage tool's table: one row per method, as ``results.md``
and the command line show it."""
from typing import Dict


def format_hp(hp: Dict[str, float]) -> str:
    """``lr=0.1, rho=1.2``; ``-`` when nothing was chosen."""
    return ', '.join(f'{k}={v:g}' for k, v in hp.items()) or '-'


def markdown_table(result: dict) -> str:
    """One run: a row per method with the chosen values and the validation
    score, Stage 1 first (its validation score too), the methods that failed
    or were skipped last, with their reasons."""
    meta = result['meta']
    lines = [
        f'Second stages of `{meta["config"]}` ({meta["num_classes"]} classes), test set of '
        f'{meta["test_images"]} images; groups by training images: Many > '
        f'{meta["many_thr"]:g}, Few < {meta["few_thr"]:g}. Hyper-parameters chosen on '
        f'{meta["val_description"]} by the mean per-class accuracy ("val").', '',
        '| Method | All | Many | Medium | Few | val | Chosen on val |',
        '|---|---|---|---|---|---|---|']

    def cells(test: dict) -> str:
        return ' | '.join('-' if test.get(k) is None else f'{test[k]:.2f}'
                          for k in ('top1', 'many', 'medium', 'few'))

    stage1 = result['stage1']
    seen = ' (seen in training)' if meta.get('val_seen_by_stage1') else ''
    val = stage1.get('val_score')
    lines.append(f'| Stage 1 | {cells(stage1["test"])} | '
                 f'{"-" if val is None else f"{val:.2f}"}{seen} | - |')
    for key, row in result['methods'].items():
        mark = ' **(exported)**' if key == (result.get('exported') or {}).get('method') else ''
        lines.append(f'| {row["name"]}{mark} | {cells(row["test"])} | {row["val_score"]:.2f} | '
                     f'{format_hp(row["chosen"])} |')
    for key, why in (result.get('failed') or {}).items():
        lines.append(f'| {key} | failed: {why} | | | | | |')
    for key, why in meta.get('skipped', {}).items():
        lines.append(f'| {key} | skipped: {why} | | | | | |')
    check = stage1.get('self_check')
    if check:
        lines += ['', f'Self-check: `mim test` of the stage-1 checkpoint on {check["images"]} '
                  f'test images gives top-1 {check["host_top1"]:.2f}, the cached stage-1 '
                  f'outputs {check["cached_top1"]:.2f}.']
    return '\n'.join(lines) + '\n'
