"""Build driver: setuptools packages the Python code, CMake builds the two native libraries.

Installed layout (one import name):
    vampnet_ort/                      <- vampnet_ort/
    vampnet_ort/ops/                  <- ops/        (onnxscript reference functions, the op contracts)
    vampnet_ort/export/               <- export/     (checkpoint readers and graph builders)
    vampnet_ort/_kernels*.so          <- pybind11 module (ops/cpp)
    vampnet_ort/libvampnet_ort_ops.so <- ONNX Runtime custom-op library (ops/cpp; .dylib on macOS, .dll on Windows)
    vampnet_ort/web/                  <- vampnet_ort/web/ (the browser app, `vampnet-ort web`)
    vampnet_ort/web/vendor/           <- node_modules/onnxruntime-web/dist (copied here when `npm ci` has run)

The CMake tree of each configuration persists in build/cmake-<configuration> (configuration = Python tag,
compiler, toolchain, sanitizers), so the next `pip install .` or `pip install -e .` rebuilds only what changed, and
a sanitizer or cross build never leaks into a plain one.

Environment:
    ONNXRUNTIME_INCLUDE_DIR   ORT headers (else a system install, else scripts/fetch_ort_headers.sh)
    VAMPNET_SANITIZE=1        ASan + UBSan build (its own CMake tree)
    VAMPNET_REQUIRE_NATIVE=1  a failed native build fails the install (CI sets it). Without it the install
                              completes as a pure-Python package that runs the reference functions and warns.
    VAMPNET_CMAKE_ARGS        extra CMake arguments (space separated), e.g. -DVAMPNET_WERROR=ON
    CXX, CMAKE_TOOLCHAIN_FILE compiler / cross toolchain (each gets its own CMake tree)
    CMAKE_BUILD_PARALLEL_LEVEL build jobs
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
NATIVE_SUFFIXES = ("*.so", "*.dylib", "*.dll", "*.pyd")
REQUIRE_NATIVE_ENV = "VAMPNET_REQUIRE_NATIVE"


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def build_configuration() -> str:
    """Name of the CMake tree for this build: one per Python tag, compiler, toolchain, extra CMake arguments and
    sanitizer setting."""
    parts = [f"cp{sys.version_info.major}{sys.version_info.minor}"]
    if os.environ.get("CXX"):
        parts.append(Path(os.environ["CXX"].split()[0]).name)
    if os.environ.get("CMAKE_TOOLCHAIN_FILE"):
        parts.append(Path(os.environ["CMAKE_TOOLCHAIN_FILE"]).stem)
    if os.environ.get("VAMPNET_CMAKE_ARGS", "").strip():
        parts.append("args" + hashlib.sha1(os.environ["VAMPNET_CMAKE_ARGS"].strip().encode()).hexdigest()[:8])
    parts.append("sanitize" if _flag("VAMPNET_SANITIZE") else "release")
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", "-".join(parts))


def _stable_pybind11_cmake_dir() -> Path:
    """pybind11's CMake dir from a copy under build/ that outlives pip's throwaway build environment, so the next
    build sees the same include path and rebuilds nothing."""
    import pybind11

    package = Path(pybind11.__file__).resolve().parent
    stable = ROOT / "build" / f"pybind11-{pybind11.__version__}"
    if not stable.is_dir():
        staging = stable.with_name(stable.name + f".tmp{os.getpid()}")
        shutil.copytree(package, staging, ignore=shutil.ignore_patterns("__pycache__"))
        os.replace(staging, stable)
    return stable / Path(pybind11.get_cmake_dir()).resolve().relative_to(package)


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    native_failed: str | None = None

    def build_extension(self, ext: Extension) -> None:
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        try:
            self._cmake_build(out_dir)
        except (OSError, subprocess.CalledProcessError, RuntimeError) as error:
            if _flag(REQUIRE_NATIVE_ENV):
                raise
            CMakeBuild.native_failed = str(error)
            # Configure afresh next time (a cache from a failed configure can keep failing after the fix).
            (ROOT / "build" / f"cmake-{build_configuration()}" / "CMakeCache.txt").unlink(missing_ok=True)
            # A pure-Python package: no stale library of an earlier build may ship or stay importable.
            for directory in self._library_dirs(out_dir):
                for pattern in NATIVE_SUFFIXES:
                    for stale in directory.glob(pattern):
                        stale.unlink()
            bar = "!" * 100
            print(f"\n{bar}\nWARNING: the vampnet-ort native build failed ({error}).\n"
                  "Installing the pure-Python package: every model runs the reference functions it carries, which "
                  "is correct but much slower.\nFix the build (see docs/DEVELOPING.md) and reinstall; set "
                  f"{REQUIRE_NATIVE_ENV}=1 to make this failure fatal.\n{bar}\n", file=sys.stderr)

    def _cmake_build(self, out_dir: Path) -> None:
        sanitize = _flag("VAMPNET_SANITIZE")
        build_dir = ROOT / "build" / f"cmake-{build_configuration()}"
        lib_dir = build_dir / "out"
        build_dir.mkdir(parents=True, exist_ok=True)
        args = [
            f"-DVAMPNET_OUTPUT_DIR={lib_dir}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={_stable_pybind11_cmake_dir()}",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DVAMPNET_SANITIZE={'ON' if sanitize else 'OFF'}",
        ]
        if os.environ.get("ONNXRUNTIME_INCLUDE_DIR"):
            args.append(f"-DONNXRUNTIME_INCLUDE_DIR={os.environ['ONNXRUNTIME_INCLUDE_DIR']}")
        args += shlex.split(os.environ.get("VAMPNET_CMAKE_ARGS", ""))
        if not (build_dir / "CMakeCache.txt").exists() and shutil.which("ninja"):
            args += ["-G", "Ninja"]
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(["cmake", "--build", str(build_dir), "--parallel", jobs], check=True)
        built = sorted(p for pattern in NATIVE_SUFFIXES for p in lib_dir.glob(pattern))
        if not built:
            raise RuntimeError(f"CMake produced no libraries in {lib_dir}")
        # Copy (not link) into place: configurations share out_dir, and each install must get the libraries of
        # its own configuration even when its CMake tree was already up to date.
        for target in self._library_dirs(out_dir):
            target.mkdir(parents=True, exist_ok=True)
            for library in built:
                shutil.copy2(library, target / library.name)

    def _library_dirs(self, out_dir: Path) -> list[Path]:
        """Where the built libraries go: setuptools' build folder and, for an editable install, the source package
        (setuptools carries back only the declared extension; the op library must sit beside it too)."""
        return [out_dir, ROOT / "vampnet_ort"] if (self.inplace or self.editable_mode) else [out_dir]

    def copy_extensions_to_source(self) -> None:
        if CMakeBuild.native_failed is None:
            super().copy_extensions_to_source()


# onnxruntime-web runtime files the web app loads (the wasm-only ES module build and its threaded SIMD wasm),
# pinned by package.json / package-lock.json; copied into the package so the wheel works offline.
ORT_WEB_VERSION = "1.30.0"
# and the native WebGPU build (the page's WebGPU backend, docs/WEB.md) with its asyncify wasm
ORT_WEB_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
                 "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
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


# Folders of data files shipped inside the package (no __init__.py): listed as packages so that setuptools ships
# them as data without warning that they are "importable but absent from packages".
# vendor/ exists only after `npm ci` (vendor_ort_web above); without it the package ships no vendor files.
DATA_PACKAGES = ("vampnet_ort.web",) + (("vampnet_ort.web.vendor",) if VENDOR_DIR.is_dir() else ())


def packages() -> list[str]:
    found = []
    for name, directory in PACKAGE_DIRS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(where=directory)]
    return found + list(DATA_PACKAGES)


def package_dirs() -> dict[str, str]:
    dirs = dict(PACKAGE_DIRS)
    for name, directory in PACKAGE_DIRS.items():
        for sub in find_packages(where=directory):
            dirs[f"{name}.{sub}"] = os.path.join(directory, *sub.split("."))
    return dirs


setup(
    packages=packages(),
    package_dir=package_dirs(),
    # the native libraries come from build_ext; the web app's files (vendor/: copied from node_modules)
    package_data={"vampnet_ort": ["py.typed"], "vampnet_ort.web": ["*.html", "*.js", "*.css", "*.json"],
                  "vampnet_ort.web.vendor": ["*"]},
    include_package_data=False,  # package data is exactly the list above (MANIFEST.in's C++ sources stay sdist-only)
    ext_modules=[CMakeExtension("vampnet_ort._kernels")],
    cmdclass={"build_ext": CMakeBuild},
    # setuptools' own build folders per configuration too: two configurations built at once (e.g. scripts/test.sh
    # and scripts/sanitize.sh) never copy their libraries into one shared build/lib.
    options={"build": {"build_base": f"build/setuptools-{build_configuration()}"}},
    zip_safe=False,
)
