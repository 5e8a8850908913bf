"""Build driver: setuptools packages the Python code, CMake builds the two native libraries.

Installed layout (one import name):
    vampnet_ort/                      <- vampnet_ort/
    vampnet_ort/ops/                  <- ops/        (onnxscript reference functions)
    vampnet_ort/export/               <- export/     (checkpoint readers and graph builders)
    vampnet_ort/_kernels*.so          <- pybind11 module (ops/cpp)
    vampnet_ort/libvampnet_ort_ops.so <- ONNX Runtime custom-op library (ops/cpp)

Environment: ONNXRUNTIME_INCLUDE_DIR (ORT headers), VAMPNET_SANITIZE=1 (ASan + UBSan build),
CMAKE_BUILD_PARALLEL_LEVEL (build jobs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        sanitize = os.environ.get("VAMPNET_SANITIZE", "") not in ("", "0")
        # One CMake tree per configuration: a cached -DVAMPNET_SANITIZE=ON must never leak into a plain build.
        build_dir = Path(self.build_temp).resolve() / ("cmake-sanitize" if sanitize else "cmake")
        build_dir.mkdir(parents=True, exist_ok=True)
        import pybind11

        args = [
            f"-DVAMPNET_OUTPUT_DIR={build_dir / 'out'}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        if os.environ.get("ONNXRUNTIME_INCLUDE_DIR"):
            args.append(f"-DONNXRUNTIME_INCLUDE_DIR={os.environ['ONNXRUNTIME_INCLUDE_DIR']}")
        args.append(f"-DVAMPNET_SANITIZE={'ON' if sanitize else 'OFF'}")
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(["cmake", "--build", str(build_dir), "--parallel", jobs], check=True)
        # Copy (not link into place): the two configurations share out_dir, and each install must get the
        # libraries of its own configuration even when its CMake tree was already up to date.
        out_dir.mkdir(parents=True, exist_ok=True)
        built = sorted((build_dir / "out").glob("*.so"))
        if not built:
            raise RuntimeError(f"CMake produced no libraries in {build_dir / 'out'}")
        for library in built:
            shutil.copy2(library, out_dir / library.name)


PACKAGE_DIRS = {"vampnet_ort": "vampnet_ort", "vampnet_ort.ops": "ops", "vampnet_ort.export": "export"}


def packages() -> list[str]:
    found = []
    for name, directory in PACKAGE_DIRS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(where=directory)]
    return found


def package_dirs() -> dict[str, str]:
    dirs = dict(PACKAGE_DIRS)
    for name, directory in PACKAGE_DIRS.items():
        for sub in find_packages(where=directory):
            dirs[f"{name}.{sub}"] = os.path.join(directory, *sub.split("."))
    return dirs


setup(
    packages=packages(),
    package_dir=package_dirs(),
    package_data={"vampnet_ort": ["*.so", "py.typed"]},
    ext_modules=[CMakeExtension("vampnet_ort._kernels")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
