"""Builds GreenEdge's Cython kernels (cython_ext/*.pyx).

A compile error fails the build loudly: there is no pure-Python fallback.
Metadata lives in pyproject.toml.
"""

import os
from glob import glob

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# Debug builds turn bounds and wraparound checks back on for every kernel.
DEBUG = os.environ.get("GREENEDGE_DEBUG_KERNELS") == "1"

extensions = [
    Extension(
        "cython_ext." + os.path.splitext(os.path.basename(path))[0],
        [path],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
    )
    for path in sorted(glob("cython_ext/*.pyx"))
]

directives = {"language_level": "3"}
if DEBUG:
    directives.update(boundscheck=True, wraparound=True)

setup(ext_modules=cythonize(extensions, compiler_directives=directives,
                            force=DEBUG))
