"""One version, and a citation for the paper and the software: the version
of disalign_mm/version.py is what the package, setup.py, the changelog's
newest entry, CITATION.cff and the README's BibTeX say."""
import importlib.util
import os.path as osp
import re

import yaml

import disalign_mm
from disalign_mm.version import __version__

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _read(name):
    with open(osp.join(ROOT, name), encoding='utf-8') as f:
        return f.read()


def test_one_version_string():
    assert re.fullmatch(r'\d+\.\d+\.\d+', __version__)
    assert disalign_mm.__version__ == __version__
    # setup.py reads the file without importing the package
    spec = importlib.util.spec_from_file_location('disalign_setup', osp.join(ROOT, 'setup.py'))
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)  # the `__main__` block does not run
    assert setup.read_version() == __version__
    assert "version=read_version()" in _read('setup.py')
    assert not re.search(r"__version__\s*=", _read('disalign_mm/__init__.py'))


def test_the_changelog_starts_at_this_version():
    first = re.search(r'^## (\S+)', _read('CHANGELOG.md'), re.M).group(1)
    assert first == __version__


def test_citation_file_cites_the_paper_and_the_software():
    cff = yaml.safe_load(_read('CITATION.cff'))
    assert cff['cff-version'] == '1.2.0' and cff['type'] == 'software'
    assert str(cff['version']) == __version__
    assert cff['license'] == 'Apache-2.0'
    paper = cff['preferred-citation']
    assert paper['title'] == ('Distribution Alignment: A Unified Framework for Long-tail Visual '
                              'Recognition')
    assert [a['family-names'] for a in paper['authors']] == ['Zhang', 'Li', 'Yan', 'He', 'Sun']
    assert paper['year'] == 2021 and paper['type'] == 'conference-paper'


def test_readme_bibtex():
    readme = _read('README.md')
    bib = re.search(r'```bibtex\n(.*?)```', readme, re.S).group(1)
    entries = re.findall(r'@(\w+)\{(\w+),', bib)
    assert entries == [('inproceedings', 'zhang2021disalign'), ('software', 'disalign_mm')]
    assert 'Distribution Alignment: A Unified Framework for Long-tail Visual Recognition' in bib
    assert 'Zhang, Songyang and Li, Zeming and Yan, Shipeng and He, Xuming and Sun, Jian' in bib
    assert f'version = {{{__version__}}}' in bib
    assert bib.count('{') == bib.count('}')
