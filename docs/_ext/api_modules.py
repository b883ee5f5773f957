"""``.. disalign-api:: disalign_mm.engine``: a package's API reference,
generated from its docstrings, that follows the package as it changes.

The directive documents, with autodoc:

1. the package: its docstring and its public API, the names of its
   ``__all__``, under the path users import them from
   (``disalign_mm.engine.DisAlignFreezeHook``);
2. every module of the package (found on disk, so a new module appears
   without editing the page), as a section: its docstring and its other
   documented members. A name of the package's ``__all__`` is documented
   once, in step 1, and left out of its module's section.

Nothing is written into the source tree (unlike ``autosummary``'s generated
stub files), so a build never changes the checkout.
"""
import importlib
import pkgutil
from typing import List

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


def modules_of(package: str) -> List[str]:
    """The package's modules and subpackages (recursively), sorted, private
    ones (``_name``) left out."""
    pkg = importlib.import_module(package)
    out = []
    for info in pkgutil.iter_modules(pkg.__path__, package + '.'):
        if info.name.rsplit('.', 1)[1].startswith('_'):
            continue
        out.append(info.name)
        if info.ispkg:
            out += modules_of(info.name)
    return sorted(out)


def public_names(package: str) -> List[str]:
    """The package's ``__all__``; empty when it has none (a package of
    modules only, such as :mod:`disalign_mm.benchmarks`)."""
    return list(getattr(importlib.import_module(package), '__all__', ()))


def _home(obj) -> str:
    """The public package an object is documented under: the first
    ``disalign_mm.<package>`` whose ``__all__`` lists it."""
    module = obj.__module__
    parts = module.split('.')
    for i in range(2, len(parts) + 1):
        pkg = importlib.import_module('.'.join(parts[:i]))
        if obj.__name__ in getattr(pkg, '__all__', ()):
            return pkg.__name__
    return module


def _defined_in(package: str, name: str) -> bool:
    """Whether ``package.name`` is defined inside ``package`` (a function or
    class whose module is the package or one of its modules; any other
    object, a constant, counts as the package's)."""
    obj = getattr(importlib.import_module(package), name)
    module = getattr(obj, '__module__', None)
    if not isinstance(module, str) or not module.startswith('disalign_mm'):
        return True
    return module == package or module.startswith(package + '.')


class DisAlignAPI(SphinxDirective):
    """The API reference of one package (see the module docstring)."""
    required_arguments = 1
    has_content = False

    def run(self) -> List[nodes.Node]:
        package = self.arguments[0]
        names = public_names(package)
        # documented here: what the package defines; what it re-exports from
        # another package of disalign_mm is documented there, and linked
        public = [n for n in names if _defined_in(package, n)]
        others = [n for n in names if n not in public]
        lines = [f'.. automodule:: {package}']
        lines += (['   :members: ' + ', '.join(public)] if public else []) + ['']
        if others:
            mod = importlib.import_module(package)
            refs = ', '.join(f':py:obj:`{n} <{_home(getattr(mod, n))}.{n}>`' for n in others)
            lines += [f'Also exported from here: {refs}.', '']
        if hasattr(importlib.import_module(package), '__path__'):
            for module in modules_of(package):
                mod = importlib.import_module(module)
                here = [n for n in public
                        if getattr(getattr(mod, n, None), '__module__', None) == module]
                title = f'``{module}``'
                lines += [title, '-' * len(title), '', f'.. automodule:: {module}',
                          '   :members:']
                if here:
                    lines.append('   :exclude-members: ' + ', '.join(here))
                lines.append('')
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source=f'<disalign-api {package}>'),
                                 node)
        return node.children


def setup(app) -> dict:
    app.add_directive('disalign-api', DisAlignAPI)
    return dict(version='1', parallel_read_safe=True, parallel_write_safe=True)
