"""The models an app serves: several bundles, each known by a name, loaded the first time it is chosen.

``ModelRegistry.from_paths`` takes bundle directories and folders of bundles (every sub-directory with a
``vampnet.json``), in the order given. A bundle's name is the ``"model_name"`` its ``vampnet.json`` records (bundles
exported from the Hub carry their fine-tune's name, ``"default"`` for the base model), else its folder's name. The
choice ``"default"`` (and no choice) selects the bundle named "default" if there is one (upstream VampNet's app
calls its base model so), else the first. Only the manifests are read at start (a bad one
is an error then); the files are verified and the sessions opened when a model is first used.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

from .bundle import MANIFEST_NAME, BundleError, read_manifest
from .pipeline import Pipeline

DEFAULT_MODEL = "default"
MODEL_NAME_FIELD = "model_name"
PathLike = Union[str, Path]


@dataclass(frozen=True)
class ModelEntry:
    """One bundle as its manifest describes it (nothing loaded yet)."""

    name: str
    path: Path
    demo: bool
    n_codebooks: int
    sample_rate: int
    hop_length: int

    @property
    def frame_rate(self) -> float:
        """Codec frames per second."""
        return self.sample_rate / self.hop_length

    @classmethod
    def read(cls, directory: PathLike, name: Optional[str] = None) -> "ModelEntry":
        """The entry of the bundle at `directory` (its manifest checked), listed as `name` or its own name."""
        path = Path(directory)
        manifest = read_manifest(path)
        where = str(path / MANIFEST_NAME)
        numbers = {}
        for key in ("n_codebooks", "sample_rate", "hop_length"):
            value = manifest.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BundleError(f"{where}: field '{key}' must be a positive integer")
            numbers[key] = value
        return cls(name or bundle_name(path, manifest), path, bool(manifest.get("demo", False)),
                   numbers["n_codebooks"], numbers["sample_rate"], numbers["hop_length"])


def bundle_name(path: Path, manifest: Dict) -> str:
    """The name a bundle is listed under: vampnet.json's ``model_name``, else the folder's name."""
    recorded = manifest.get(MODEL_NAME_FIELD)
    if recorded is not None and (not isinstance(recorded, str) or not recorded.strip()):
        raise BundleError(f"{path / MANIFEST_NAME}: field '{MODEL_NAME_FIELD}' must be a non-empty string")
    return recorded.strip() if isinstance(recorded, str) else path.resolve().name


def _bundle_dirs(path: Path) -> List[Path]:
    """`path` itself when it is a bundle, else its sub-directories that are bundles (sorted by name)."""
    if not path.is_dir():
        raise BundleError(f"{path}: no such directory")
    if (path / MANIFEST_NAME).exists():
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and (p / MANIFEST_NAME).exists())
    if not found:
        raise BundleError(f"{path}: neither a bundle (no {MANIFEST_NAME}) nor a folder of bundles")
    return found


class ModelRegistry:
    """Named bundles in a fixed order; ``pipeline(name)`` loads one on first use (thread-safe)."""

    def __init__(self, entries: Sequence[ModelEntry], intra_op_threads: Optional[int] = None,
                 loader: Callable[[Path, Optional[int]], Pipeline] = lambda path, threads: Pipeline(
                     path, intra_op_threads=threads)) -> None:
        if not entries:
            raise BundleError("no model bundles given")
        names = [entry.name for entry in entries]
        for name in names:
            if names.count(name) > 1:
                paths = ", ".join(str(e.path) for e in entries if e.name == name)
                raise BundleError(f"two bundles are named {name!r} ({paths}); give one a different folder name "
                                  f"or '{MODEL_NAME_FIELD}'")
        self.entries = list(entries)
        self._threads = intra_op_threads
        self._loader = loader
        self._pipelines: Dict[str, Pipeline] = {}
        self._locks: Dict[str, threading.Lock] = {entry.name: threading.Lock() for entry in entries}

    @classmethod
    def from_paths(cls, paths: Iterable[PathLike], intra_op_threads: Optional[int] = None) -> "ModelRegistry":
        entries = []
        for given in paths:
            entries.extend(ModelEntry.read(directory) for directory in _bundle_dirs(Path(given)))
        return cls(entries, intra_op_threads)

    @classmethod
    def of_pipeline(cls, pipeline: Pipeline, name: Optional[str] = None) -> "ModelRegistry":
        """A registry of one already loaded pipeline."""
        registry = cls([ModelEntry.read(pipeline.bundle.path, name)])
        registry._pipelines[registry.default] = pipeline
        return registry

    @property
    def names(self) -> List[str]:
        return [entry.name for entry in self.entries]

    @property
    def default(self) -> str:
        """The name ``"default"`` selects: the bundle named "default" if there is one, else the first."""
        return DEFAULT_MODEL if DEFAULT_MODEL in self._locks else self.entries[0].name

    def resolve(self, choice: Optional[str]) -> ModelEntry:
        """The entry `choice` names (``"default"``, empty or None: ``self.default``)."""
        if choice is not None and not isinstance(choice, str):
            raise ValueError(f"the model choice must be a name, got {type(choice).__name__}")
        name = (choice or "").strip()
        if name in ("", DEFAULT_MODEL):
            name = self.default
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise ValueError(f"unknown model {choice!r}; choose one of: {', '.join([DEFAULT_MODEL, *self.names])}")

    def pipeline(self, choice: Optional[str] = None) -> Pipeline:
        entry = self.resolve(choice)
        with self._locks[entry.name]:
            if entry.name not in self._pipelines:
                self._pipelines[entry.name] = self._loader(entry.path, self._threads)
            return self._pipelines[entry.name]

    def loaded(self, choice: Optional[str] = None) -> bool:
        return self.resolve(choice).name in self._pipelines
