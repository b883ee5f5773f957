"""Config loading with ``--cfg-options``, as mmengine's tools do it."""
import argparse
from typing import Dict, Optional


def parse_options(options: Optional[Dict[str, object]]) -> Dict[str, object]:
    """``{'a.b': value}`` with every string value parsed as ``--cfg-options
    key=value ...`` on a command line (mmengine's ``DictAction``) parses it;
    values that are not strings (already parsed, e.g. by ``DictAction``) are
    kept as they are."""
    from mmengine.config import DictAction
    if not options:
        return {}
    raw = {k: v for k, v in options.items() if isinstance(v, str)}
    out = dict(options)
    if raw:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        out.update(parser.parse_args(['--o'] + [f'{k}={v}' for k, v in raw.items()]).o)
    return out


def nested(dotted: Dict[str, object]) -> dict:
    """``{'a.b': v}`` as ``{'a': {'b': v}}`` (what a config file writes)."""
    from mmengine.config import Config
    cfg = Config()
    cfg.merge_from_dict(dict(dotted))
    return cfg.to_dict()


def load_config(path: str, options: Optional[Dict[str, object]] = None):
    """``Config.fromfile(path)`` with ``options`` merged exactly as
    ``--cfg-options key=value ...`` on a command line would be (string values
    are parsed from their string form)."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(parse_options(options))
    return cfg
