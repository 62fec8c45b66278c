"""Builds the compiled stock core (``ecshop/_stockcore.pyx``).

The extension is required on CPython: ``pip install .`` fails loudly if it cannot be
compiled, so a shop never runs the slow path by accident. Set ``ECSHOP_NO_EXTENSIONS=1``
at build time to install the pure-Python twin only (for example on PyPy).
"""

import os
import platform

from setuptools import setup

ext_modules = []
if os.environ.get("ECSHOP_NO_EXTENSIONS") != "1" and platform.python_implementation() == "CPython":
    from Cython.Build import cythonize

    ext_modules = cythonize(
        ["ecshop/_stockcore.pyx"],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
    )

setup(ext_modules=ext_modules)
