"""Every patch of another library agrees with the unpatched library where
both work (README, "Environment": the list of patches). Here: the
`disalign_mm::` config-base hook of disalign_mm-mim.pth, which must leave
every other package's bases as mmengine resolves them. (mmengine's checkpoint
loader: tests/test_engine/test_checkpoint_loading.py; lvis's numpy aliases:
tests/det/test_det_lvis.py.)"""
import json
import sys
import textwrap

from _wheel import run_python

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
