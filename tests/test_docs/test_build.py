"""`make docs`: the documentation builds with warnings as errors, and the
build fails on a broken link between pages, a missing anchor, and a cited
repository path that does not exist.

Runs Sphinx as `make docs` does (``python -m sphinx -E -W --keep-going``)
in a subprocess, into a temporary folder: the checkout is never written.
Needs requirements/docs.txt (tools/setup_env.sh installs it)."""
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

pytestmark = pytest.mark.slow


def sphinx(src: str, out: str) -> subprocess.CompletedProcess:
    """``make docs``'s command, with the output under ``out``."""
    try:
        import myst_parser  # noqa: F401
        import sphinx as _  # noqa: F401
    except ImportError as e:
        pytest.fail(f'{e}: the documentation needs requirements/docs.txt in this environment '
                    f'({sys.executable}); tools/setup_env.sh installs it')
    # --no-color: the warnings are matched as text, also where the caller's
    # environment asks for colours (FORCE_COLOR, as some CI runners set)
    cmd = [sys.executable, '-m', 'sphinx', '-E', '-W', '--keep-going', '--no-color', '-b', 'html',
           '-d', osp.join(out, 'doctrees'), src, osp.join(out, 'html')]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=ROOT))


def warnings_of(res: subprocess.CompletedProcess) -> list:
    text = re.sub(r'\x1b\[[0-9;]*m', '', res.stdout + res.stderr)  # any colour left
    return [line for line in text.splitlines() if 'WARNING' in line]


def test_the_documentation_builds_without_a_warning(tmp_path):
    res = sphinx(osp.join(ROOT, 'docs'), str(tmp_path))
    assert res.returncode == 0 and not warnings_of(res), res.stdout[-3000:] + res.stderr[-5000:]
    html = tmp_path / 'html'
    # the pages of the issue: get started, how it works, recipes, each host,
    # the tool, diagnostics, the benchmark, the API, the changelog
    for page in ('index', 'get_started', 'install', 'how_it_works', 'recipes', 'class_counts',
                 'hosts/classification', 'hosts/segmentation', 'hosts/detection', 'second_stage',
                 'diagnostics', 'benchmark', 'patches', 'development', 'changelog', 'api/index'):
        assert (html / f'{page}.html').is_file(), page
    # included, not copied: the config READMEs, the benchmark's results, the changelog
    seg = (html / 'hosts' / 'segmentation.html').read_text()
    assert 'disalign_resnest_s101-d8_deeplabv3plus_8xb4-8k_ade20k-512x512.py' in seg
    bench = (html / 'benchmark.html').read_text()
    assert 'GRW + magnitude + margin (DisAlign)' in bench
    assert '_images/per_class_accuracy.png' in bench
    assert (html / '_images' / 'per_class_accuracy.png').is_file()
    assert 'One class-count path' in (html / 'changelog.html').read_text()
    # the API reference comes from the docstrings of every public package
    for package, name in (('core', 'DisAlignCalibration'), ('engine', 'DisAlignFreezeHook'),
                          ('cls', 'LongTailAccuracy'), ('seg', 'HeadBodyTailIoUMetric'),
                          ('det', 'LongTailLVISMetric'), ('second_stage', 'select_second_stage'),
                          ('benchmarks', 'disalign_mm.benchmarks.fmnist_lt'),
                          ('diagnostics', 'check_comparable')):
        page = (html / 'api' / f'{package}.html').read_text()
        assert f'id="disalign_mm.{package}.{name}"' in page or f'id="{name}"' in page or \
            f'id="module-{name}"' in page, (package, name)


def _broken_copy(tmp_path, lines: str) -> str:
    """A copy of the repository's documentation with ``lines`` appended to
    get_started.md, the API pages replaced by plain pages (the failure does
    not need autodoc, and the build is then seconds). The Markdown files the
    pages include are copied; the rest of the repository is linked."""
    repo = tmp_path / 'repo'
    repo.mkdir()
    for name in os.listdir(ROOT):
        if name in ('docs', '.git', 'README.md', 'CHANGELOG.md', 'configs') or \
                name.startswith('.venv'):
            continue
        os.symlink(osp.join(ROOT, name), repo / name)
    shutil.copytree(osp.join(ROOT, 'configs'), repo / 'configs')
    for name in ('README.md', 'CHANGELOG.md'):
        shutil.copy(osp.join(ROOT, name), repo / name)
    shutil.copytree(osp.join(ROOT, 'docs'), repo / 'docs', ignore=shutil.ignore_patterns('_build'))
    for rst in (repo / 'docs' / 'api').glob('*.rst'):
        rst.write_text(f'{rst.stem}\n{"=" * len(rst.stem)}\n\nA page.\n')
    page = repo / 'docs' / 'get_started.md'
    page.write_text(page.read_text() + lines)
    return str(repo / 'docs')


def test_the_build_fails_on_broken_links_and_missing_paths(tmp_path):
    lines = ('\n[a broken link](no_such_page.md)\n'
             '\n[a broken anchor](benchmark.md#no-such-heading)\n'
             '\nSee `tests/test_det/test_det_lvis.py` and `configs/lvis_v1/no_such_config.py`.\n')
    src = _broken_copy(tmp_path, lines)
    n = len(open(osp.join(src, 'get_started.md')).read().splitlines())
    res = sphinx(src, str(tmp_path / 'out'))
    assert res.returncode != 0
    found = warnings_of(res)
    page = osp.join(src, 'get_started.md')
    expected = [
        (n - 4, r"'myst' cross-reference target not found: 'no_such_page.md'"),
        (n - 2, r"local id not found in doc 'benchmark': 'no-such-heading'"),
        (n, r'cites tests/test_det/test_det_lvis.py, which does not exist'),
        (n, r'cites configs/lvis_v1/no_such_config.py, which does not exist'),
    ]
    for line, message in expected:
        assert any(w.startswith(f'{page}:{line}: WARNING: ') and re.search(message, w)
                   for w in found), (line, message, found)
    # nothing else: each of these alone fails the build
    assert len(found) == len(expected), found
    assert 'build finished with problems, 4 warnings (with warnings treated as errors)' in \
        res.stdout + res.stderr


def test_the_build_fails_on_a_broken_link_of_an_included_readme(tmp_path):
    """The config folders' READMEs, included by the host pages, are checked
    as GitHub shows them too (their links and cited paths)."""
    src = _broken_copy(tmp_path, '')
    readme = osp.join(osp.dirname(src), 'configs', 'ade20k', 'README.md')
    with open(readme, 'a') as f:
        f.write('\nSee [the recipes](../../docs/no_such_recipes.md) and `tools/no_such_tool.py`.\n')
    res = sphinx(src, str(tmp_path / 'out'))
    assert res.returncode != 0
    found = '\n'.join(warnings_of(res))
    assert 'no_such_recipes' in found and 'cites tools/no_such_tool.py, which does not exist' \
        in found, found
