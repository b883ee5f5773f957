"""Every patch of another library agrees with the unpatched library where
both work (README, "Environment": the list of patches). Here: the
`disalign_mm::` config-base hook of disalign_mm-mim.pth, which must leave
every other package's bases as mmengine resolves them. (mmengine's checkpoint
loader: tests/test_engine/test_checkpoint_loading.py; lvis's numpy aliases:
tests/test_det/test_lvis.py.)"""
import json
import sys
import textwrap

import pytest

from tests.build_utils import ROOT, run_python

SITE = [p for p in sys.path if p.endswith('site-packages')]

PARSE = '''
    import json
    from mmengine.config import Config
    from mmengine.config.utils import MODULE2PACKAGE
    cfg = Config.fromfile('user.py')
    print(json.dumps(dict(hook='disalign_mm' in MODULE2PACKAGE, cfg=cfg.to_dict()),
                     sort_keys=True, default=repr))
'''


def test_config_base_hook_agrees_with_mmengine_on_host_bases(tmp_path):
    (tmp_path / 'user.py').write_text(
        "_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py']\n"
        "model = dict(head=dict(num_classes=7))\n")
    hooked = run_python(PARSE, tmp_path)  # the .pth runs at start-up
    # -S: no .pth, mmengine as it ships
    plain = run_python(f'import sys; sys.path[:0] = {SITE!r}\n' + textwrap.dedent(PARSE),
                       tmp_path, '-S')
    assert hooked.returncode == 0, hooked.stderr[-3000:]
    assert plain.returncode == 0, plain.stderr[-3000:]
    hooked, plain = json.loads(hooked.stdout), json.loads(plain.stdout)
    assert hooked['hook'] is True and plain['hook'] is False
    assert hooked['cfg']['model']['head']['num_classes'] == 7
    assert hooked['cfg'] == plain['cfg']


@pytest.mark.slow  # fresh interpreters
def test_patches_only_where_asked_for(tmp_path):
    """Importing disalign_mm.core patches nothing; disalign_mm.engine patches
    mmengine's loader only, disalign_mm.det lvis only (-S: no .pth hook)."""
    res = run_python(f'''
        import sys
        sys.path[:0] = [{ROOT!r}] + {SITE!r}
        ours = lambda: [f for f in sys.meta_path if type(f).__module__.startswith('disalign_mm')]
        import disalign_mm.core
        import numpy, torch
        import lvis.eval
        from mmengine.config.utils import MODULE2PACKAGE
        from mmengine.runner import checkpoint
        assert ours() == []
        assert checkpoint.torch is torch and lvis.eval.np is numpy
        assert 'disalign_mm' not in MODULE2PACKAGE
        import disalign_mm.engine
        assert checkpoint.torch is not torch and lvis.eval.np is numpy
        import disalign_mm.det
        assert lvis.eval.np is not numpy and not hasattr(numpy, 'float')
        assert 'disalign_mm' not in MODULE2PACKAGE and ours() == []
        print('ok')
        ''', tmp_path, '-S')
    assert res.returncode == 0, res.stderr[-3000:]
    # (onedl-mmdetection 3.5.1 prints 'Could not import OneDL. Skipping OneDL
    # datasets.' at import: its optional `onedl` package is not installed)
    assert res.stdout.strip().splitlines()[-1] == 'ok'


FULL_NAMES = '''
    import json
    from mim.utils import module_full_name
    print(json.dumps({m: module_full_name(m) for m in ('mmdet', 'mmseg', 'mmpretrain')}))
'''


@pytest.mark.slow  # fresh interpreters
def test_host_names_resolve_in_either_family(tmp_path):
    """mmengine and mim name codebases by upstream distribution names. On
    the fork (onedl-mmengine 0.10.12, onedl-mim 0.5.1) that breaks
    `_base_ = 'mmseg::...'` and `mim train mmdet`; the hook points them at
    the distribution that provides the import name, and changes nothing on
    upstream."""
    import disalign_mm
    providers = {k: v[0][0] for k, v in disalign_mm.find_providers().items() if v}
    fork = disalign_mm.family_of(providers['mmseg']) == 'fork'
    (tmp_path / 'user.py').write_text("_base_ = ['mmseg::_base_/models/fcn_r50-d8.py']\n"
                                      "model = dict(decode_head=dict(num_classes=7))\n")
    hooked = run_python(PARSE, tmp_path)
    plain = run_python(f'import sys; sys.path[:0] = {SITE!r}\n' + textwrap.dedent(PARSE),
                       tmp_path, '-S')
    assert hooked.returncode == 0, hooked.stderr[-3000:]
    cfg = json.loads(hooked.stdout)['cfg']
    assert cfg['model']['decode_head']['type'] == 'FCNHead'
    assert cfg['model']['decode_head']['num_classes'] == 7
    if fork:  # the fork's own failure, recorded
        assert plain.returncode != 0
        assert 'ModuleNotFoundError: mmsegmentation is not installed' in plain.stderr
    else:
        assert plain.returncode == 0 and json.loads(plain.stdout)['cfg'] == cfg
    names = json.loads(run_python(FULL_NAMES, tmp_path).stdout)
    assert names == {m: providers[m] for m in ('mmdet', 'mmseg', 'mmpretrain')}
    plain = run_python(f'import sys; sys.path[:0] = {SITE!r}\n' + textwrap.dedent(FULL_NAMES),
                       tmp_path, '-S')
    plain = json.loads(plain.stdout)
    if fork:  # onedl-mim alone: 'mmdet' is part of onedl-mmdetection and mmdet3d
        assert plain == dict(names, mmdet='')
    else:
        assert plain == names
