"""Build the Cython extensions of src_cython/ into the fastntk package.

Every ``src_cython/<name>.pyx`` becomes the extension ``fastntk.<name>``.  OpenMP is
used when the compiler accepts ``-fopenmp``; otherwise the extensions are built
serially (``prange`` then runs as a plain loop).
"""
import os
import sys
import tempfile
from glob import glob

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup


def openmp_flags():
    """Return (compile_args, link_args) enabling OpenMP, or empty lists if unsupported."""
    if os.environ.get("FASTNTK_NO_OPENMP"):
        return [], []
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.errors import CompileError, LinkError
    from setuptools._distutils.sysconfig import customize_compiler

    if sys.platform == "win32":
        flag = "/openmp"
        link = []
    elif sys.platform == "darwin":
        return [], []  # Apple clang has no -fopenmp; serial build.
    else:
        flag = "-fopenmp"
        link = ["-fopenmp"]
    compiler = new_compiler()
    customize_compiler(compiler)
    source = "#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "omp_check.c")
        with open(path, "w") as fh:
            fh.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=[flag])
            compiler.link_executable(
                objects, "omp_check", output_dir=tmp, extra_postargs=link
            )
        except (CompileError, LinkError):
            print("fastntk: compiler has no OpenMP support, building serial extensions")
            return [], []
    return [flag], link


def extensions():
    omp_compile, omp_link = openmp_flags()
    optimise = [] if sys.platform == "win32" else ["-O3"]
    exts = []
    for path in sorted(glob(os.path.join("src_cython", "*.pyx"))):
        name = os.path.splitext(os.path.basename(path))[0]
        exts.append(
            Extension(
                f"fastntk.{name}",
                [path],
                include_dirs=[np.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=optimise + omp_compile,
                extra_link_args=omp_link,
            )
        )
    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )


setup(ext_modules=extensions())
