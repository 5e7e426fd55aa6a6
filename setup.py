"""setup.py: Beam's --setup_file needs one, and the C libraries are compiled here, at install time.

The kernels (sve_kernels/src/*.c) are built as one extension module that Python binds with ctypes
(see docs/a64fx.md for why). OpenMP is added when the compiler accepts it. Extra flags come from CFLAGS,
e.g. CFLAGS="-mcpu=a64fx" on Fugaku, CFLAGS="-march=armv8.2-a+sve" on other SVE machines.

The MinHash kernels (tokenizer/native/*.c, bound the same way by tokenizer/_minhash_lib.py) are a second
extension: plain C11 without OpenMP (one document is far too small to share between threads). Extension
sources go into the sdist by themselves, so Dataflow workers installing it with --setup_file compile them too.
"""
import os
import tempfile
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildKernels(build_ext):
    def build_extensions(self) -> None:
        # No FP exception flags or errno are read, so the selects in exp/tanh may be if-converted and vectorised
        # (IEEE results unchanged: this is not -ffast-math).
        compile_args, link_args = ["-O3", "-std=c11", "-fno-trapping-math", "-fno-math-errno"], []
        if os.environ.get("SVE_KERNELS_OPENMP", "1") != "0" and self._links_with("-fopenmp"):
            compile_args.append("-fopenmp")
            link_args.append("-fopenmp")
        for ext in self.extensions:
            openmp = ext.name.startswith("sve_kernels.")
            ext.extra_compile_args = compile_args if openmp else [a for a in compile_args if a != "-fopenmp"]
            ext.extra_link_args = link_args if openmp else []
        super().build_extensions()

    def _links_with(self, flag: str) -> bool:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "omp_probe.c")
            with open(src, "w") as f:
                f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
            try:
                objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=[flag])
                self.compiler.link_executable(objs, "omp_probe", output_dir=tmp, extra_postargs=[flag])
            except Exception:  # CompileError / LinkError: build without OpenMP
                print(f"sve_kernels: compiler rejects {flag}; building single-threaded")
                return False
        return True


setup(
    ext_modules=[
        Extension(
            "sve_kernels._native",
            sources=["sve_kernels/_native.c", *sorted(glob("sve_kernels/src/*.c"))],
            depends=glob("sve_kernels/src/*.h"),
            include_dirs=["sve_kernels/src"],
        ),
        Extension("tokenizer._minhash_native", sources=["tokenizer/native/module.c", "tokenizer/native/minhash.c"]),
    ],
    cmdclass={"build_ext": BuildKernels},
)
