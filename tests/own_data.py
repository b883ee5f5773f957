"""A downstream project on its own data, as the configs' READMEs tell it:
the README's config lines, read from between their markers and written
as they are into a project directory outside the repository
(``_base_ = 'disalign_mm::...'``), run through the real Runner with the
project as the working directory. Only the size of the model, the images
and the schedule are shrunk (``--cfg-options``, as the other end-to-end
tests do); the data, the classes and the counts are the README's."""
import os.path as osp
import re
import uuid

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def readme_config(folder: str, name: str) -> str:
    """The python block between ``<!-- own-data:NAME:begin -->`` and
    ``<!-- own-data:NAME:end -->`` of ``configs/FOLDER/README.md``."""
    path = osp.join(REPO, 'configs', folder, 'README.md')
    with open(path) as f:
        text = f.read()
    begin, end = f'<!-- own-data:{name}:begin -->', f'<!-- own-data:{name}:end -->'
    assert text.count(begin) == 1 and text.count(end) == 1, (path, name)
    block = text[text.index(begin) + len(begin):text.index(end)]
    code = re.fullmatch(r'\s*```python\n(.*?)```\s*', block, re.S)
    assert code, f'{path}: the {name} block is not one python code block'
    return code.group(1)


def write_config(project, name: str, text: str) -> str:
    """``project/name`` with ``text``; its path."""
    path = osp.join(str(project), name)
    with open(path, 'w') as f:
        f.write(text)
    return path


def run(config: str, options: dict, work_dir: str, train: bool = True):
    """The Runner of a project's config with ``options`` merged in (as
    ``--cfg-options`` would); trains it (``train``) and returns it."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    cfg.work_dir = str(work_dir)
    tag = uuid.uuid4().hex[:8]
    cfg.experiment_name = f'own_{tag}'
    cfg.visualizer.name = f'own_vis_{tag}'
    runner = Runner.from_cfg(cfg)
    if train:
        runner.train()
    return runner
