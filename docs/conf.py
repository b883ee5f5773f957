"""Sphinx configuration of the disalign_mm documentation (``make docs``).

Why Sphinx with MyST: it is what OpenMMLab's own documentation uses
(mmengine, mmpretrain, mmsegmentation and mmdet build their docs with
Sphinx, ``myst-parser`` for Markdown pages and autodoc for the API), so the
plugin's pages read like the hosts' and its API reference is generated from
the same Google-style docstrings their users already read. The pages stay
Markdown, readable on GitHub as they are. The theme is Read the Docs', the
one OpenMMLab's ``pytorch_sphinx_theme`` is built on (that theme is not on
the package index; requirements/docs.txt says why each package is there).

``make docs`` builds with warnings as errors (``-W --keep-going``): a broken
link between pages, a missing anchor, a docstring Sphinx cannot read, or a
repository path a page cites that does not exist (``_ext/repo_paths.py``)
fails the build.
"""
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
sys.path.insert(0, osp.join(HERE, '_ext'))
if ROOT not in sys.path:  # the package of this checkout, for autodoc
    sys.path.insert(0, ROOT)

from disalign_mm.version import __version__  # noqa: E402

project = 'disalign_mm'
author = 'disalign_mm contributors'
copyright = 'disalign_mm contributors, Apache 2.0'
version = release = __version__

extensions = [
    'myst_parser',
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
    'sphinx_copybutton',
    'repo_paths',
    'api_modules',
]
source_suffix = {'.md': 'markdown', '.rst': 'restructuredtext'}
root_doc = 'index'
exclude_patterns = ['_build', 'README.md']
templates_path = []

# MyST: GitHub's heading anchors, so that `page.md#a-heading` links work on
# GitHub and here alike
myst_heading_anchors = 4
myst_enable_extensions = ['colon_fence', 'dollarmath']

# autodoc / napoleon: the Google-style docstrings of the package
autodoc_default_options = {'member-order': 'bysource'}
autodoc_typehints = 'description'
autodoc_inherit_docstrings = False  # the hosts' base-class docstrings are theirs
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# repo_paths: besides the pages built here, the Markdown files GitHub shows
repo_paths_root = ROOT
repo_paths_files = ['README.md', 'CHANGELOG.md', 'configs/*/README.md', 'docs/README.md']

html_theme = 'sphinx_rtd_theme'
html_title = f'disalign_mm {release}'
html_theme_options = {'navigation_depth': 3}
html_static_path = []

# warnings that are not about this project: none are silenced
suppress_warnings = []
nitpicky = False
