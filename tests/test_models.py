"""``vampnet_ort.models.ModelRegistry``: bundles by name (``model_name`` in vampnet.json, else the folder),
"default" = the first, folders of bundles, loaded on first use; bad names and duplicates are clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import bundle_doubles as bd
from vampnet_ort.bundle import BundleError
from vampnet_ort.models import ModelRegistry


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bd.write_bundle(tmp_path_factory.mktemp("double") / "base")


def _copy(bundle: Path, target: Path, model_name=None) -> Path:
    shutil.copytree(bundle, target)
    if model_name is not None:
        manifest = json.loads((target / "vampnet.json").read_text())
        manifest["model_name"] = model_name
        (target / "vampnet.json").write_text(json.dumps(manifest))
    return target


def test_names_default_and_lazy_loading(bundle: Path, tmp_path: Path) -> None:
    tuned = _copy(bundle, tmp_path / "folder-name", model_name="saxophone")
    registry = ModelRegistry.from_paths([bundle, tuned])
    assert registry.names == ["base", "saxophone"] and registry.default == "base"
    assert registry.resolve("default").name == "base" and registry.resolve(None).name == "base"
    assert registry.resolve("saxophone").path == tuned
    assert not registry.loaded("base") and not registry.loaded("saxophone")
    pipeline = registry.pipeline("saxophone")
    assert registry.loaded("saxophone") and not registry.loaded("base")
    assert registry.pipeline("saxophone") is pipeline and pipeline.bundle.path == tuned
    with pytest.raises(ValueError, match=r"unknown model 'tenor'; choose one of: default, base, saxophone"):
        registry.resolve("tenor")


def test_a_folder_of_bundles(bundle: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    _copy(bundle, folder / "b-second")
    _copy(bundle, folder / "a-first")
    (folder / "not-a-bundle").mkdir()
    assert ModelRegistry.from_paths([folder]).names == ["a-first", "b-second"]
    with pytest.raises(BundleError, match="neither a bundle"):
        ModelRegistry.from_paths([folder / "not-a-bundle"])


def test_bad_names_are_errors(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="two bundles are named 'base'"):
        ModelRegistry.from_paths([bundle, _copy(bundle, tmp_path / "x", model_name="base")])
    with pytest.raises(BundleError, match="model_name"):
        ModelRegistry.from_paths([_copy(bundle, tmp_path / "y", model_name="  ")])
    with pytest.raises(BundleError, match="no such directory"):
        ModelRegistry.from_paths([tmp_path / "missing"])


def test_a_bundle_named_default_is_the_default(bundle: Path, tmp_path: Path) -> None:
    """Bundles exported from the Hub name the base model "default" (upstream's name for it): "default" selects it,
    wherever it is listed."""
    base = _copy(bundle, tmp_path / "vampnet", model_name="default")
    registry = ModelRegistry.from_paths([bundle, base])
    assert registry.names == ["base", "default"] and registry.default == "default"
    assert registry.resolve("default").path == base and registry.resolve(None).path == base
