"""The checker of cited repository paths (docs/_ext/repo_paths.py), without
Sphinx: the repository's Markdown passes it, and each kind of broken
citation is reported with its line."""
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CHECKER = osp.join(ROOT, 'docs', '_ext', 'repo_paths.py')
#: the Markdown files GitHub renders (docs/conf.py's repo_paths_files): their
#: links are checked here too
GITHUB = ['README.md', 'CHANGELOG.md', 'configs/*/README.md', 'docs/README.md']
#: the pages Sphinx builds (it checks their links; their anchors may be
#: headings of included files)
PAGES = ['docs/**/*.md']
MARKDOWN = GITHUB + PAGES


def _load():
    spec = importlib.util.spec_from_file_location('repo_paths', CHECKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


repo_paths = _load()


def check(text, where='docs/page.md', links=True):
    return repo_paths.check_text(text, ROOT, where, links)


def test_the_repository_markdown_cites_only_what_exists():
    found = dict(repo_paths.check_files(ROOT, PAGES, links=False),
                 **repo_paths.check_files(ROOT, GITHUB))
    assert found == {}, '\n'.join(f'{f}:{line}: {msg}' for f, problems in found.items()
                                  for line, msg in problems)


def test_every_markdown_file_is_covered():
    """The patterns reach README.md, the changelog, every config folder's
    README and every page (a new folder of pages is not left out)."""
    import glob
    files = {osp.relpath(p, ROOT) for pattern in MARKDOWN
             for p in glob.glob(osp.join(ROOT, pattern), recursive=True)}
    assert {'README.md', 'CHANGELOG.md', 'docs/index.md', 'docs/hosts/detection.md',
            'docs/api/index.md', 'configs/lvis_v1/README.md'} <= files
    assert len([f for f in files if f.startswith('configs/')]) == 7


@pytest.mark.parametrize('text', [
    'see `tests/det/test_det_lvis.py`',                        # inline code
    'applied by `import disalign_mm.det`; tests/det/test_det_lvis.py |',   # prose, a table cell
    '```bash\npython tests/det/test_det_lvis.py\n```',          # a code block
    '    python tests/det/test_det_lvis.py',                   # an indented code block
])
def test_a_missing_test_path_is_reported_wherever_it_is_cited(text):
    problems = check('# Title\n\n' + text + '\n')
    assert len(problems) == 1, problems
    line, msg = problems[0]
    assert msg == 'cites tests/det/test_det_lvis.py, which does not exist'
    assert line == 3 + ('```' in text)


def test_existing_paths_patterns_and_lists_pass():
    assert check('`tests/test_det/test_lvis.py`, tests/test_engine/test_checkpoint_*.py, '
                 '`configs/imagenet_lt/resnet{50,101,152}_8xb32-coslr-90e_imagenet-lt.py`, '
                 '`configs/<folder>/README.md`, `tools/benchmark/results/`, '
                 '(see `disalign_mm/engine/per_class.py`).') == []


def test_one_missing_alternative_of_a_list_fails():
    (problem, ) = check('`configs/imagenet_lt/resnet{50,77}_8xb32-coslr-90e_imagenet-lt.py`')
    assert 'resnet{50,77}' in problem[1]


def test_format_ids_and_generated_paths_are_not_paths():
    assert check('`disalign_mm/per-class@1`, `disalign_mm/class-counts@1`, '
                 '`disalign_mm/.mim/configs`, `docs/_build/html`') == []


def test_modules_and_names_of_the_package():
    assert check('`disalign_mm.engine.ClassCountsHook`, `disalign_mm.second_stage.select`, '
                 '`disalign_mm.engine.checkpoint.ALLOWED_GLOBALS`, `disalign_mm.core`') == []
    (problem, ) = check('the package `disalign_mm.bench` (`second_stage` drives it)')
    assert problem[1] == ("cites disalign_mm.bench: no such module, and "
                          "disalign_mm/__init__.py defines no 'bench'")
    (problem, ) = check('`disalign_mm.engine.checkpoint.NO_SUCH_NAME`')
    assert 'disalign_mm/engine/checkpoint.py defines no' in problem[1]


def test_config_bases():
    assert check("`_base_ = 'disalign_mm::fashion_mnist_lt/resnet-s_1xb128-coslr-8e_fmnist-lt.py'`"
                 ) == []
    (problem, ) = check("_base_ = 'disalign_mm::fashion_mnist_lt/no_such_config.py'\n")
    assert 'configs/fashion_mnist_lt/no_such_config.py does not exist' in problem[1]


def test_config_names_in_a_config_folder_readme():
    where = 'configs/fashion_mnist_lt/README.md'
    assert check('| `resnet-s_1xb128-coslr-8e_fmnist-lt.py` | stage 1 |', where) == []
    (problem, ) = check('| `resnet-s_1xb128-coslr-9e_fmnist-lt.py` | stage 1 |', where)
    assert problem[1] == ('cites resnet-s_1xb128-coslr-9e_fmnist-lt.py, which is not in '
                          'configs/fashion_mnist_lt/')
    # elsewhere a bare name is not resolved against a folder
    assert check('`resnet-s_1xb128-coslr-9e_fmnist-lt.py`', 'docs/page.md') == []


def test_links_and_anchors_of_github_markdown():
    text = ('# Quick start\n\n## How it works: the math\n\n'
            '[ok](#how-it-works-the-math) [ok](docs/recipes.md) [ok](LICENSE) '
            '[ok](docs/recipes.md#sources) [web](https://example.org/x)\n'
            '[bad](#no-such-heading)\n'
            '[bad](docs/no_such_page.md)\n'
            '[bad](docs/recipes.md#no-such-heading)\n'
            '[bad](../outside.md)\n'
            '![bad](docs/figures/no_such.png)\n')
    problems = check(text, 'README.md')
    assert [line for line, _ in problems] == [6, 7, 8, 9, 10]
    assert problems[0][1] == 'link to #no-such-heading: no such heading in README.md'
    assert problems[1][1] == 'link to docs/no_such_page.md: docs/no_such_page.md does not exist'
    assert problems[2][1] == 'link to docs/recipes.md#no-such-heading: no heading ' \
        '#no-such-heading in docs/recipes.md'
    assert problems[3][1] == 'link to ../outside.md: leaves the repository'
    # relative to the file's folder
    assert check('[ok](../../docs/recipes.md)', 'configs/ade20k/README.md') == []
    # Sphinx checks the links of the pages it builds: links=False leaves them
    assert check('[bad](no_such_page.md)', links=False) == []


def test_slugs_are_githubs():
    assert repo_paths.slugify('Benchmark: DisAlign against the simpler second stages') == \
        'benchmark-disalign-against-the-simpler-second-stages'
    assert repo_paths.slugify('`configs/ade20k`: FCN and DeepLabV3+ (mmseg)') == \
        'configsade20k-fcn-and-deeplabv3-mmseg'
    assert repo_paths.headings('# A\n\n# A\n\n```\n# not a heading\n```\n(label)=\n') == \
        {'a', 'a-1', 'label'}


def test_command_line_exit_status(tmp_path):
    (tmp_path / 'tests').mkdir()
    (tmp_path / 'tests' / 'test_x.py').write_text('')
    (tmp_path / 'good.md').write_text('`tests/test_x.py`\n')
    (tmp_path / 'bad.md').write_text('`tests/test_y.py`\n')
    run = [sys.executable, CHECKER, '--root', str(tmp_path)]
    good = subprocess.run(run + ['good.md'], capture_output=True, text=True)
    assert good.returncode == 0 and 'every cited path exists' in good.stdout
    bad = subprocess.run(run + ['*.md'], capture_output=True, text=True)
    assert bad.returncode == 1
    assert 'bad.md:1: cites tests/test_y.py, which does not exist' in bad.stdout
    missing = subprocess.run(run + ['nothing/*.md'], capture_output=True, text=True)
    assert missing.returncode == 1 and 'no file matches this pattern' in missing.stdout
