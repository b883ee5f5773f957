"""Where a setting of a Runner's config comes from, for error messages that
tell a downstream project which inherited line to override and how.

Best effort: the config file that set a top-level key is found by reading
the files of the ``_base_`` chain (nearest first; of several bases the last,
which wins a merge), each for an assignment of that key at its top level.
Files of this package are named as a downstream config names them
(``disalign_mm::<folder>/<file>``).
"""
import ast
import os.path as osp
from typing import Any, Optional


def _assigns(filename: str, key: str) -> bool:
    with open(filename) as f:
        tree = ast.parse(f.read(), filename)
    return any(isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == key for t in node.targets) for node in tree.body)


def _bases(filename: str) -> list:
    from mmengine.config import Config
    out = []
    for base in Config._get_base_files(filename):
        path, _ = Config._get_cfg_path(base, filename)
        out.append(path if osp.isabs(path) else osp.join(osp.dirname(filename), path))
    return out


def _file_setting(filename: str, key: str, depth: int = 0) -> Optional[str]:
    if depth > 32 or not osp.isfile(filename) or not filename.endswith('.py'):
        return None
    if _assigns(filename, key):
        return filename
    for base in reversed(_bases(filename)):
        found = _file_setting(base, key, depth + 1)
        if found:
            return found
    return None


def display_name(path: str) -> str:
    """``disalign_mm::<folder>/<file>`` for a config of this package, else
    the path."""
    from ..mim_scope import package_root
    real = osp.realpath(path)
    for root in (osp.join(package_root(), '.mim', 'configs'),
                 osp.join(osp.dirname(package_root()), 'configs')):
        root = osp.realpath(root)
        if real.startswith(root + osp.sep):
            return 'disalign_mm::' + osp.relpath(real, root)
    return path


def setting_origin(cfg, key: str) -> Optional[str]:
    """The config file (see :func:`display_name`) that set the top-level
    ``key`` of ``cfg`` (an mmengine ``Config`` made from a file), or None
    when it cannot be told."""
    filename = getattr(cfg, 'filename', None)
    if not filename:
        return None
    try:
        found = _file_setting(filename, key)
    except Exception:  # best effort: a message must not fail on a base it cannot read
        return None
    return display_name(found) if found else None


def as_code(value: Any) -> str:
    """``value`` as a config writes it: dicts as ``dict(key=...)``."""
    if isinstance(value, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in value):
            return 'dict(' + ', '.join(f'{k}={as_code(v)}' for k, v in value.items()) + ')'
        return '{' + ', '.join(f'{k!r}: {as_code(v)}' for k, v in value.items()) + '}'
    if isinstance(value, (list, tuple)):
        items = ', '.join(as_code(v) for v in value)
        if isinstance(value, list):
            return f'[{items}]'
        return f'({items}{"," if len(value) == 1 else ""})'
    return repr(value)


__all__ = ['setting_origin', 'display_name', 'as_code']
