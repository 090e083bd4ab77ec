"""Sphinx configuration of latent_jax's documentation (``make docs``).

The pages are MyST Markdown; those under ``tutorial/`` and ``guides/`` are notebooks executed
at build time (myst-nb), so every figure and number in them comes from the build. The API
reference is generated from the docstrings (autodoc, autosummary, Napoleon for the Google
style). The build runs with warnings as errors; ``_check_docstrings`` makes a public name
without a docstring one of them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

project = "latent_jax"
author = "the latent_jax authors"
copyright = "2026, the latent_jax authors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]
html_theme = "sphinx_book_theme"
html_title = "latent_jax"
html_theme_options = {"show_toc_level": 2, "home_page_in_toc": True}
html_static_path = ["_static"]
html_css_files = ["custom.css"]

# The API reference: each module's own public names (imports are documented where they are
# defined, so a name re-exported by a package is not described twice).
autosummary_generate = True
autosummary_ignore_module_all = True
autodoc_default_options = {
    "members": True,
    "undoc-members": True,  # so that a missing docstring reaches _process_docstring
    "show-inheritance": True,
    "ignore-module-all": True,
}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # attributes as fields: a NamedTuple's are not described twice

# MathJax served with the site (the files of the sphinx-mathjax-offline package), so the
# formulas render without a network.
mathjax_path = "mathjax/tex-chtml.js"

# MyST and the executed notebooks: a cell that raises fails the build.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 300
nb_execution_show_tb = True
nb_merge_streams = True

# Links into the libraries latent_jax builds on, when their inventories can be reached.
INVENTORIES = {
    "python": "https://docs.python.org/3",
    "numpy": "https://numpy.org/doc/stable",
    "jax": "https://docs.jax.dev/en/latest",
    "flax": "https://flax.readthedocs.io/en/latest",
    "optax": "https://optax.readthedocs.io/en/latest",
    "sklearn": "https://scikit-learn.org/stable",
}


def _online(host: str = "docs.python.org") -> bool:
    """Whether the inventories can be fetched (the build machine may have no internet)."""
    if os.environ.get("LATENT_JAX_DOCS_OFFLINE"):
        return False
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError:
        return False
    return True


intersphinx_mapping = {name: (url, None) for name, url in INVENTORIES.items()} if _online() else {}
if not intersphinx_mapping:
    print(
        "docs: the inventories of python, numpy, jax, flax, optax and scikit-learn are out "
        "of reach; names from those libraries are left unlinked"
    )


# The docstrings write shapes as Python does, "(batch, *image_shape)", and scikit-learn's
# fitted attributes with their trailing underscore, "n_components_"; outside literals, both
# mean something else to reStructuredText (emphasis, a link), so they are escaped.
_LITERAL = re.compile(r"(``.*?``|:[a-z]+:`[^`]*`)")
_STARRED = re.compile(r"(?<=[(,\s])\*(?=[A-Za-z_]\w*[),])")
_TRAILING_UNDERSCORE = re.compile(r"\b([A-Za-z]\w*?[A-Za-z0-9])_(?=[\s,.):;]|$)")


def _escape(line: str) -> str:
    parts = _LITERAL.split(line)
    for i in range(0, len(parts), 2):  # the even parts are outside literals
        parts[i] = _TRAILING_UNDERSCORE.sub(r"\1\\_", _STARRED.sub(r"\\*", parts[i]))
    return "".join(parts)


def _process_docstring(app, what, name, obj, options, lines):
    """Escapes the shapes; a public module, class, function or method without a docstring
    fails the build."""
    lines[:] = [_escape(line) for line in lines]
    public = not any(part.startswith("_") for part in name.split("."))
    # Where it is defined (autodoc also reads the docstrings of names a module imports).
    home = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
    defined_here = what == "module" or name == home
    if (
        public
        and defined_here
        and what in {"module", "class", "function", "method"}
        and not any(lines)
    ):
        from sphinx.util import logging

        logging.getLogger(__name__).warning("%s %s has no docstring", what, name)


def _skip_member(app, what, name, obj, skip, options):
    """Leaves out the ``set_*_request`` methods scikit-learn's metadata routing generates."""
    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def _copy_mathjax(app, exception):
    if exception is None:
        from sphinx.util.fileutil import copy_asset

        package = Path(importlib.util.find_spec("sphinx-mathjax-offline").origin).parent
        copy_asset(package / "static" / "mathjax", Path(app.outdir) / "_static" / "mathjax")


def setup(app):
    app.connect("build-finished", _copy_mathjax)
    app.connect("autodoc-process-docstring", _process_docstring)
    app.connect("autodoc-skip-member", _skip_member)
