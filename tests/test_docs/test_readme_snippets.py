"""The README's "DisAlign in your config" snippets say what the shipped
stage-2 configs they name resolve to: every value a snippet sets is the
config's."""
import os.path as osp
import re

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _snippets():
    readme = open(osp.join(ROOT, 'README.md')).read()
    out = []
    for block in re.findall(r'```python\n(.*?)```', readme, re.S):
        m = re.match(r'# (\w+) \((\w+)\): (configs/\S+\.py)\n', block)
        if m:
            out.append(pytest.param(m.group(3), block, id=m.group(1)))
    return out


def _leaves(obj, path=()):
    """(path, value) of every value a config dict sets (``_delete_`` aside)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k != '_delete_':
                yield from _leaves(v, path + (k, ))
    else:
        yield path, obj


def test_one_snippet_per_host():
    assert [p.id for p in _snippets()] == ['classification', 'segmentation', 'detection']


@pytest.mark.parametrize('config,snippet', _snippets())
def test_snippet_is_the_config(config, snippet):
    namespace = {}
    exec(compile(snippet, 'README.md', 'exec'), {'dict': dict}, namespace)
    cfg = Config.fromfile(osp.join(ROOT, config))
    base = namespace.pop('_base_')
    base = base[0] if isinstance(base, list) else base
    assert osp.isfile(osp.join(ROOT, osp.dirname(config), base)), base
    namespace.pop('load_from', None)  # the user's checkpoint
    assert {'model', 'custom_hooks'} <= set(namespace)
    for key, value in namespace.items():
        for path, leaf in _leaves(value, (key, )):
            got = cfg
            for p in path:
                got = got[p]
            if isinstance(got, (list, tuple)):
                got = [dict(x) if hasattr(x, 'items') else x for x in got]
            assert got == leaf, (config, path)
