"""Builds the extension module `shmbus` with CMake (pyproject.toml says how to install it).

The project's CMake build makes the module (target shmbus_python, python/CMakeLists.txt) from the
static libshmbus; this only configures it for the interpreter running pip, builds that one
target and copies the file where setuptools packs it. Environment:
  SHMBUS_PYTHON_BUILD_DIR  where CMake and setuptools build (default: build/python-package)
  SHMBUS_CMAKE_ARGS        more arguments for the CMake configure step
  SHMBUS_CMAKE_BUILD_DIR   a build tree of this checkout already configured with SHMBUS_PYTHON=ON
                           for this interpreter (e.g. build/): its module is built there and
                           packed, with no configure step of its own (the test suite does this)
ccache is used when it is installed.
"""
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
BUILD_BASE = Path(os.environ.get("SHMBUS_PYTHON_BUILD_DIR", ROOT / "build" / "python-package"))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        target = Path(self.get_ext_fullpath(ext.name)).resolve()
        existing = os.environ.get("SHMBUS_CMAKE_BUILD_DIR")
        cmake_dir = Path(existing) if existing else BUILD_BASE / "cmake"
        if not existing:
            self.configure(cmake_dir)
        subprocess.run(["cmake", "--build", str(cmake_dir), "--target", "shmbus_python",
                        "--parallel", str(os.cpu_count() or 1)], check=True)
        built = list((cmake_dir / "python").glob("shmbus*.so"))
        if len(built) != 1:
            raise RuntimeError(f"expected one shmbus*.so in {cmake_dir / 'python'}, found {built}")
        if built[0].name != target.name:
            raise RuntimeError(f"{built[0]} was built for another interpreter than {sys.executable} "
                               f"(which needs {target.name})")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], target)

    def configure(self, cmake_dir):
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(cmake_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DSHMBUS_PYTHON=ON",
            f"-DPython3_EXECUTABLE={sys.executable}",
            "-DBUILD_TESTING=OFF",
            "-DSHMBUS_EXAMPLES=OFF",
        ]
        if shutil.which("ccache"):
            configure += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache", "-DCMAKE_C_COMPILER_LAUNCHER=ccache"]
        configure += shlex.split(os.environ.get("SHMBUS_CMAKE_ARGS", ""))
        subprocess.run(configure, check=True)


setup(
    ext_modules=[Extension("shmbus", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    options={
        "build": {"build_base": str(BUILD_BASE / "setuptools")},
        "egg_info": {"egg_base": str(BUILD_BASE)},
    },
)
