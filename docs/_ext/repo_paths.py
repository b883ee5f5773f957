"""Every repository path the documentation cites must exist.

A Sphinx extension (``extensions = ['repo_paths']`` in ``docs/conf.py``) and
a command line (``python docs/_ext/repo_paths.py FILE.md ...``) over the same
checks. Sphinx itself checks the links between the pages it builds; this
module checks what Sphinx cannot see:

- **cited paths**: a token that starts with a top-level folder of the
  repository (:data:`ROOTS`: ``tests/``, ``configs/``, ``tools/``,
  ``disalign_mm/``, ...) in inline code, a link or a code block names a
  file or folder that exists (``{a,b}`` lists are expanded, ``*`` and
  ``<placeholder>`` match any name, at least one file must match);
- **modules**: ``disalign_mm.x.y`` names a module of the package and, after
  the module, a name it defines or imports (read from the source, nothing
  is imported);
- **config bases**: ``disalign_mm::folder/file.py`` is a file of
  ``configs/``;
- **config names** in a config folder's ``README.md``: a ``*.py`` name
  without a folder is a file of that folder;
- **links** of the Markdown files outside the Sphinx build (README.md,
  CHANGELOG.md, the config folders' READMEs, as GitHub renders them): a
  relative target exists inside the repository and an ``#anchor`` is a
  heading of the target file (GitHub's slugs).

In Sphinx, each problem is a warning with its file and line, so ``sphinx -W``
(``make docs``) fails on it.
"""
import ast
import glob
import os
import os.path as osp
import re
import sys
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

#: top-level folders whose paths are checked when cited
ROOTS = ('tests', 'configs', 'tools', 'disalign_mm', 'docs', 'requirements', '.ci')
#: generated paths: cited, but absent from a fresh clone
GENERATED = ('disalign_mm/.mim', 'docs/_build', 'disalign_mm.egg-info')

_PATH = re.compile(r'(?<![\w./:@-])((?:%s)/[\w./{},*<>+-]*)'
                   % '|'.join(re.escape(r) for r in ROOTS))
_MODULE = re.compile(r'(?<![\w./:-])(disalign_mm(?:\.[A-Za-z_]\w*)+)')
_BASE = re.compile(r'disalign_mm::([\w./{},*<>-]+)')
_BARE_CONFIG = re.compile(r'^[\w{},<>*.-]+\.py$')
_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
_INLINE_CODE = re.compile(r'(`+)(.+?)\1')
_FENCE = re.compile(r'^\s*(```|~~~)')
_HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')
_MYST_TARGET = re.compile(r'^\(([\w.-]+)\)=\s*$')


# ------------------------------------------------------------------ reading
def _lines(text: str) -> Iterator[Tuple[int, str, bool]]:
    """(line number, line, inside a fenced code block) of a Markdown text;
    4-space indented blocks count as code too."""
    fence = None
    for i, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if m and fence is None:
            fence = m.group(1)
            yield i, line, True
            continue
        if m and fence is not None and line.strip().startswith(fence):
            fence = None
            yield i, line, True
            continue
        yield i, line, fence is not None or line.startswith('    ')


def _citations(text: str) -> Iterator[Tuple[int, str, str]]:
    """(line, kind, token) of what a Markdown text cites: ``code`` (inline
    code spans and code blocks), ``text`` (a line of prose, for paths cited
    without markup) and ``link`` (link and image targets)."""
    for i, line, code in _lines(text):
        if code:
            yield i, 'code', line
            continue
        for m in _LINK.finditer(line):
            yield i, 'link', m.group(1)
        for m in _INLINE_CODE.finditer(line):
            yield i, 'code', m.group(2)
        yield i, 'text', _INLINE_CODE.sub(' ', _LINK.sub(' ', line))


_INCLUDE = re.compile(r'^```\{include\}\s+(\S+)', re.M)
#: examples name the user's own files my_*.py (my_stage1.py): not repository paths
USER_FILE_PREFIX = 'my_'


def headings(text: str, path: Optional[str] = None) -> Set[str]:
    """The anchors GitHub and MyST (``myst_heading_anchors``) give the
    headings of a Markdown text, and MyST's ``(label)=`` targets; with the
    text's ``path``, also those of the files its MyST ``{include}``
    directives include (a heading offset does not change an anchor)."""
    out, seen = set(), {}
    if path is not None:
        for m in _INCLUDE.finditer(text):
            inc = osp.normpath(osp.join(osp.dirname(path), m.group(1)))
            if osp.isfile(inc) and inc != osp.normpath(path):
                with open(inc, encoding='utf-8') as f:
                    out |= headings(f.read(), inc)
    for _, line, code in _lines(text):
        if code:
            continue
        m = _MYST_TARGET.match(line)
        if m:
            out.add(m.group(1))
            continue
        m = _HEADING.match(line)
        if not m:
            continue
        slug = slugify(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f'{slug}-{n}')
    return out


def slugify(title: str) -> str:
    """GitHub's anchor of a heading: inline markup dropped, lower case,
    punctuation removed, spaces to hyphens."""
    title = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', title)  # links -> their text
    title = title.replace('`', '').lower()
    title = re.sub(r'[^\w\- ]', '', title)
    return title.replace(' ', '-')


# ------------------------------------------------------------------ checks
def _expand(pattern: str) -> List[str]:
    """``a{1,2}b`` -> ``['a1b', 'a2b']`` (nested lists too)."""
    m = re.search(r'\{([^{}]*)\}', pattern)
    if not m:
        return [pattern]
    out = []
    for alt in m.group(1).split(','):
        out += _expand(pattern[:m.start()] + alt + pattern[m.end():])
    return out


def _exists(root: str, pattern: str) -> bool:
    """Whether every expansion of ``pattern`` (relative to ``root``) names
    at least one existing file or folder."""
    for alt in _expand(pattern):
        alt = re.sub(r'<[^<>]*>', '*', alt)
        if any(ch in alt for ch in '*?['):
            if not glob.glob(osp.join(root, alt)):
                return False
        elif not osp.exists(osp.join(root, alt)):
            return False
    return True


def _clean(token: str) -> str:
    """A cited path without the sentence's punctuation after it."""
    return token.rstrip('.,;:)\'"')


def _module_names(path: str) -> Set[str]:
    """Names a module defines or imports at top level (and its
    ``__all__``); for a package, its submodules too."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split('.')[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.add(n.id)
            # the names of __all__, also those a module's __getattr__
            # provides on first use (PEP 562)
            if (any(isinstance(t, ast.Name) and t.id == '__all__' for t in targets)
                    and isinstance(node.value, (ast.List, ast.Tuple))):
                names.update(e.value for e in node.value.elts
                             if isinstance(e, ast.Constant) and isinstance(e.value, str))
        elif isinstance(node, (ast.If, ast.Try)):  # conditional definitions
            for sub in ast.walk(node):
                if isinstance(sub, (ast.FunctionDef, ast.ClassDef)):
                    names.add(sub.name)
                elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
    if osp.basename(path) == '__init__.py':
        folder = osp.dirname(path)
        names.update(osp.splitext(f)[0] for f in os.listdir(folder)
                     if f.endswith('.py') or osp.isfile(osp.join(folder, f, '__init__.py')))
    return names


def module_problem(root: str, dotted: str) -> Optional[str]:
    """Why ``disalign_mm.a.b`` does not name a module (or a name of one) of
    the package under ``root``; None when it does."""
    parts = dotted.split('.')
    if parts[-1] in ('py', 'md', 'json', 'yml', 'txt'):  # a file name, checked as a path
        return None
    folder = osp.join(root, parts[0])
    module = osp.join(folder, '__init__.py')
    for i, part in enumerate(parts[1:], 1):
        if osp.isfile(osp.join(folder, part, '__init__.py')):
            folder = osp.join(folder, part)
            module = osp.join(folder, '__init__.py')
            continue
        if osp.isfile(osp.join(folder, part + '.py')):
            module = osp.join(folder, part + '.py')
            if i < len(parts) - 1 and parts[i + 1] not in _module_names(module):
                return (f'{".".join(parts[:i + 2])}: {osp.relpath(module, root)} defines no '
                        f'{parts[i + 1]!r}')
            return None
        if part not in _module_names(module):
            return (f'{".".join(parts[:i + 1])}: no such module, and '
                    f'{osp.relpath(module, root)} defines no {part!r}')
        return None
    return None


def _generated(path: str) -> bool:
    return any(path == g or path.startswith(g + '/') for g in GENERATED)


def check_text(text: str, root: str, where: str, links: bool = True) -> List[Tuple[int, str]]:
    """Problems of one Markdown text as (line, message).

    Args:
        text (str): The Markdown.
        root (str): The repository root.
        where (str): The file's path relative to ``root`` (relative links and
            bare config names are resolved against its folder).
        links (bool): Check link targets and anchors too (for files GitHub
            renders; Sphinx checks the links of the pages it builds).
            Defaults to True.
    """
    problems = []
    folder = osp.dirname(where)
    config_folder = folder if re.fullmatch(r'configs/[^/]+', folder) and \
        osp.basename(where) == 'README.md' else None
    own_anchors = None
    for line, kind, token in _citations(text):
        if kind == 'link' and links:
            target = token
            if re.match(r'^[a-z][a-z0-9+.-]*:', target):  # http:, mailto:, project:, ...
                continue
            path, _, anchor = target.partition('#')
            if not path:
                if own_anchors is None:
                    own_anchors = headings(text)
                if anchor not in own_anchors:
                    problems.append((line, f'link to #{anchor}: no such heading in {where}'))
                continue
            rel = osp.normpath(osp.join(folder, path))
            if rel.startswith('..'):
                problems.append((line, f'link to {target}: leaves the repository'))
            elif not osp.exists(osp.join(root, rel)):
                problems.append((line, f'link to {target}: {rel} does not exist'))
            elif anchor and rel.endswith('.md'):
                with open(osp.join(root, rel)) as f:
                    if anchor not in headings(f.read(), osp.join(root, rel)):
                        problems.append((line, f'link to {target}: no heading #{anchor} in {rel}'))
            continue
        if kind == 'link':
            continue
        for m in _PATH.finditer(token):
            if token[m.end():m.end() + 1] == '@':  # a format id, disalign_mm/per-class@1
                continue
            path = _clean(m.group(1))
            if path.endswith('/'):
                path = path.rstrip('/')
            if path in ROOTS or _generated(path):
                continue
            if not _exists(root, path):
                problems.append((line, f'cites {path}, which does not exist'))
        for m in _BASE.finditer(token):
            path = 'configs/' + _clean(m.group(1))
            if not _exists(root, path):
                problems.append((line, f'cites disalign_mm::{_clean(m.group(1))}: {path} does '
                                 'not exist'))
        for m in _MODULE.finditer(token):
            why = module_problem(root, _clean(m.group(1)))
            if why:
                problems.append((line, f'cites {why}'))
        if config_folder and kind == 'code':
            for word in token.split():
                word = _clean(word.strip('`\'"'))
                if _BARE_CONFIG.match(word) and not word.startswith(USER_FILE_PREFIX) and \
                        not _exists(root, osp.join(config_folder, word)):
                    problems.append((line, f'cites {word}, which is not in {config_folder}/'))
    return problems


def check_files(root: str, patterns: Sequence[str], links: bool = True) -> Dict[str, list]:
    """{path relative to root: problems} of the files matching the glob
    ``patterns`` (relative to ``root``); files without problems left out.
    A pattern that matches nothing is a problem too."""
    out = {}
    for pattern in patterns:
        files = sorted(glob.glob(osp.join(root, pattern), recursive=True))
        if not files:
            out[pattern] = [(0, 'no file matches this pattern')]
        for path in files:
            rel = osp.relpath(path, root).replace(os.sep, '/')
            with open(path, encoding='utf-8') as f:
                problems = check_text(f.read(), root, rel, links)
            if problems:
                out[rel] = problems
    return out


# ------------------------------------------------------------------ Sphinx
def _warn(app, location: str, message: str) -> None:
    from sphinx.util import logging
    logging.getLogger('repo_paths').warning(message, location=location, type='repo_paths')


def _source_read(app, docname: str, source: list) -> None:
    root = app.config.repo_paths_root
    path = osp.relpath(app.env.doc2path(docname), root).replace(os.sep, '/')
    for line, message in check_text(source[0], root, path, links=False):
        _warn(app, f'{app.env.doc2path(docname)}:{line}', message)


def _builder_inited(app) -> None:
    root = app.config.repo_paths_root
    found = check_files(root, app.config.repo_paths_files)
    for rel, problems in found.items():
        for line, message in problems:
            _warn(app, f'{osp.join(root, rel)}:{line}', message)


def setup(app) -> dict:
    app.add_config_value('repo_paths_root', osp.dirname(app.srcdir), 'env')
    app.add_config_value('repo_paths_files', [], 'env')
    app.connect('builder-inited', _builder_inited)
    app.connect('source-read', _source_read)
    return dict(version='1', parallel_read_safe=True, parallel_write_safe=True)


# ------------------------------------------------------------------ command line
def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('files', nargs='+', help='Markdown files or glob patterns, relative to --root')
    p.add_argument('--root', default=osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                   help='the repository root (default: two folders above this file)')
    args = p.parse_args(argv)
    found = check_files(args.root, args.files)
    for rel, problems in found.items():
        for line, message in problems:
            print(f'{rel}:{line}: {message}')
    n = sum(len(v) for v in found.values())
    print(f'{n} problem(s)' if n else 'every cited path exists')
    return 1 if n else 0


if __name__ == '__main__':
    sys.exit(main())
