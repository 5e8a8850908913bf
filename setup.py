"""Build driver: setuptools packages the Python code, CMake builds the two native libraries.

Installed layout (one import name):
    vampnet_ort/                      <- vampnet_ort/
    vampnet_ort/ops/                  <- ops/        (onnxscript reference functions)
    vampnet_ort/export/               <- export/     (checkpoint readers and graph builders)
    vampnet_ort/_kernels*.so          <- pybind11 module (ops/cpp)
    vampnet_ort/libvampnet_ort_ops.so <- ONNX Runtime custom-op library (ops/cpp)
    vampnet_ort/web/                  <- vampnet_ort/web/ (the browser app, `vampnet-ort web`)
    vampnet_ort/web/vendor/           <- node_modules/onnxruntime-web/dist (copied here when `npm ci` has run)

Environment: ONNXRUNTIME_INCLUDE_DIR (ORT headers), VAMPNET_SANITIZE=1 (ASan + UBSan build),
CMAKE_BUILD_PARALLEL_LEVEL (build jobs).
"""

from __future__ import annotations

import json
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


# onnxruntime-web runtime files the web app loads (the wasm-only ES module build and its threaded SIMD wasm),
# pinned by package.json / package-lock.json; copied into the package so the wheel works offline.
ORT_WEB_VERSION = "1.30.0"
ORT_WEB_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
VENDOR_DIR = ROOT / "vampnet_ort" / "web" / "vendor"


def vendor_ort_web() -> None:
    """Copy the pinned onnxruntime-web dist files from node_modules (after `npm ci`) into vampnet_ort/web/vendor.

    Without node_modules nothing is copied and the package builds without them (`vampnet-ort web` then says how
    to get them); a node_modules holding another onnxruntime-web version is an error."""
    package = ROOT / "node_modules" / "onnxruntime-web"
    if not (package / "package.json").is_file():
        return
    version = json.loads((package / "package.json").read_text(encoding="utf-8")).get("version")
    if version != ORT_WEB_VERSION:
        raise RuntimeError(f"node_modules holds onnxruntime-web {version}, the web app is pinned to "
                           f"{ORT_WEB_VERSION}: run 'npm ci'")
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    for name in ORT_WEB_FILES:
        source, target = package / "dist" / name, VENDOR_DIR / name
        if not target.is_file() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)
    (VENDOR_DIR / "VERSION").write_text(
        f"onnxruntime-web {ORT_WEB_VERSION} (MIT license, Microsoft), dist files copied from node_modules by setup.py\n",
        encoding="utf-8")


vendor_ort_web()

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
    package_data={"vampnet_ort": ["*.so", "py.typed", "web/*.html", "web/*.js", "web/*.css", "web/vendor/*"]},
    ext_modules=[CMakeExtension("vampnet_ort._kernels")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
