"""``export --hf``: the released checkpoints through huggingface_hub, offline, against a real hub cache.

The cache is laid out as huggingface_hub leaves it after downloading ``hugggof/vampnet``
(``HF_HOME/hub/models--hugggof--vampnet/{blobs,refs/main,snapshots/<commit>/...}``, files as symlinks to blobs
named by their sha256), holding the golden checkpoints as the base model, one fine-tune (``loras/jazz/``) and one
incomplete folder (``loras/half/`` without c2f.pth). Every test runs with HF_HUB_OFFLINE=1: no network access.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from vampnet_ort.export.bundle import export_bundle
from vampnet_ort.export.checkpoint import save_checkpoint, save_lora_file
from vampnet_ort.export.hub import DEFAULT_REPO, HubError, fetch_model, list_fine_tunes
from vampnet_ort.export.random_checkpoint import (
    GOLDEN_C2F_KWARGS,
    GOLDEN_COARSE_KWARGS,
    random_lora_state,
    random_vampnet_state,
)

from cli_testing import cli_command
from op_testing import GOLDEN

hub_constants = pytest.importorskip("huggingface_hub.constants")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _add_file(repo_dir: Path, commit: str, repo_path: str, source: Path) -> None:
    """One file as hf_hub_download stores it: the blob named by its sha256, a relative symlink in the snapshot."""
    blob = repo_dir / "blobs" / _sha256(source)
    blob.parent.mkdir(parents=True, exist_ok=True)
    if not blob.exists():
        blob.write_bytes(source.read_bytes())
    link = repo_dir / "snapshots" / commit / repo_path
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("hf_home")
    work = tmp_path_factory.mktemp("finetune")
    save_checkpoint(work / "coarse.pth", random_vampnet_state(GOLDEN_COARSE_KWARGS, seed=11), GOLDEN_COARSE_KWARGS)
    save_checkpoint(work / "c2f.pth", random_vampnet_state(GOLDEN_C2F_KWARGS, seed=12), GOLDEN_C2F_KWARGS)
    repo_dir = home / "hub" / "models--hugggof--vampnet"
    for name in ("codec.pth", "coarse.pth", "c2f.pth"):
        _add_file(repo_dir, COMMIT, name, GOLDEN / name)
    _add_file(repo_dir, COMMIT, "loras/jazz/coarse.pth", work / "coarse.pth")
    _add_file(repo_dir, COMMIT, "loras/jazz/c2f.pth", work / "c2f.pth")
    _add_file(repo_dir, COMMIT, "loras/half/coarse.pth", work / "coarse.pth")
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(COMMIT)
    # a second repository whose snapshot lacks c2f.pth
    other = home / "hub" / "models--someone--partial"
    _add_file(other, COMMIT, "codec.pth", GOLDEN / "codec.pth")
    _add_file(other, COMMIT, "coarse.pth", GOLDEN / "coarse.pth")
    (other / "refs").mkdir()
    (other / "refs" / "main").write_text(COMMIT)
    return home


@pytest.fixture
def offline_hub(hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """huggingface_hub in this process pointed at the test cache, offline (it reads these settings at import)."""
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    return hf_home


def test_fetch_base_and_fine_tune_from_the_cache(offline_hub: Path):
    snapshot = offline_hub / "hub" / "models--hugggof--vampnet" / "snapshots" / COMMIT
    base = fetch_model()
    assert base.repo == DEFAULT_REPO and base.revision == "main" and base.commit == COMMIT and base.model == "default"
    assert base.paths == {"codec": snapshot / "codec.pth", "coarse": snapshot / "coarse.pth",
                          "c2f": snapshot / "c2f.pth"}
    assert _sha256(base.paths["coarse"]) == _sha256(GOLDEN / "coarse.pth")
    lines: list[str] = []
    jazz = fetch_model(model="jazz", revision=COMMIT, log=lines.append)
    assert jazz.paths["coarse"] == snapshot / "loras/jazz/coarse.pth" and jazz.paths["codec"] == snapshot / "codec.pth"
    assert jazz.files == {"codec": "codec.pth", "coarse": "loras/jazz/coarse.pth", "c2f": "loras/jazz/c2f.pth"}
    assert lines == [f"{DEFAULT_REPO}@{COMMIT}: {f}" for f in ("codec.pth", "loras/jazz/coarse.pth",
                                                                "loras/jazz/c2f.pth")]


def test_list_fine_tunes_offline(offline_hub: Path):
    lines: list[str] = []
    assert list_fine_tunes(log=lines.append) == ["jazz"]  # loras/half lacks c2f.pth: not a fine-tune
    assert len(lines) == 1 and "offline" in lines[0] and "local cache only" in lines[0]
    with pytest.raises(HubError, match=r"someone/else: the repository is not in the Hugging Face cache .*HF_HUB_OFFLINE"):
        list_fine_tunes("someone/else")


def test_export_with_hf_equals_the_local_export(offline_hub: Path, tmp_path: Path):
    """--hf (a fine-tune, int8, logits, a LoRA file) writes the same graphs as exporting the same files by path, and records
    the repository, commit, files with their sha256 and the model name."""
    snapshot = offline_hub / "hub" / "models--hugggof--vampnet" / "snapshots" / COMMIT
    lora = tmp_path / "lora.pth"
    save_lora_file(lora, random_lora_state(GOLDEN_COARSE_KWARGS, seed=4))
    options = dict(logits=True, quantize="int8", lora_coarse=lora)
    hf = export_bundle(tmp_path / "hf", hf=True, hf_model="jazz", **options)
    local = export_bundle(tmp_path / "local", codec=snapshot / "codec.pth", coarse=snapshot / "loras/jazz/coarse.pth",
                          c2f=snapshot / "loras/jazz/c2f.pth", **options)
    hf_manifest = json.loads((hf / "vampnet.json").read_text())
    local_manifest = json.loads((local / "vampnet.json").read_text())
    assert hf_manifest.pop("model_name") == "jazz"
    assert hf_manifest.pop("hf") == {
        "repo": "hugggof/vampnet", "revision": "main", "commit": COMMIT, "model": "jazz",
        "files": {role: {"path": path, "sha256": _sha256(snapshot / path)} for role, path in
                  (("codec", "codec.pth"), ("coarse", "loras/jazz/coarse.pth"), ("c2f", "loras/jazz/c2f.pth"))},
    }
    assert hf_manifest == local_manifest
    assert sorted(p.name for p in hf.iterdir()) == sorted(p.name for p in local.iterdir())
    for path in local.iterdir():
        if path.name != "vampnet.json":
            assert (hf / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.parametrize("kwargs, message", [
    (dict(hf_model="rock"), r"hugggof/vampnet: no fine-tune 'rock' in the local cache .*cached: jazz\).*--list"),
    (dict(hf_model="half"), r"no fine-tune 'half' in the local cache"),
    (dict(hf="someone/partial"), r"someone/partial: c2f.pth is not in the Hugging Face cache .*HF_HUB_OFFLINE is set"
                                 r".*without HF_HUB_OFFLINE.*--codec/--coarse/--c2f"),
    (dict(hf="someone/else"), r"someone/else: codec.pth is not in the Hugging Face cache"),
    (dict(hf_revision="v2"), r"hugggof/vampnet@v2: codec.pth is not in the Hugging Face cache"),
    (dict(hf="not a repo"), r"--hf 'not a repo': not a model repository id \(OWNER/NAME"),
    (dict(hf_model="../jazz"), r"--hf-model '../jazz': not a fine-tune name"),
])
def test_hub_errors_are_one_line(offline_hub: Path, tmp_path: Path, kwargs: dict, message: str):
    kwargs = {"hf": True, **kwargs}
    with pytest.raises(HubError, match=message) as info:
        export_bundle(tmp_path / "b", **kwargs)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "b").exists() and list(tmp_path.iterdir()) == []


def test_hf_arguments_must_fit(offline_hub: Path, tmp_path: Path):
    from vampnet_ort.export.bundle import ExportError

    with pytest.raises(ExportError, match="either hf or local checkpoints"):
        export_bundle(tmp_path / "b", hf=True, coarse=GOLDEN / "coarse.pth")
    with pytest.raises(ExportError, match="need hf"):
        export_bundle(tmp_path / "b", codec=GOLDEN / "codec.pth", coarse=GOLDEN / "coarse.pth", hf_model="jazz")
    with pytest.raises(ExportError, match="a codec and a coarse checkpoint are needed"):
        export_bundle(tmp_path / "b", codec=GOLDEN / "codec.pth")


# ---- the command line, as a person runs it ------------------------------------------------------------------------

def _run(hf_home: Path, *args: object) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    env.pop("HF_HUB_CACHE", None)
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_cli_export_hf_one_command(hf_home: Path, tmp_path: Path):
    proc = _run(hf_home, "export", "--hf", "--out", tmp_path / "models")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str((tmp_path / "models").resolve())
    assert "hugggof/vampnet: c2f.pth" in proc.stderr
    manifest = json.loads((tmp_path / "models" / "vampnet.json").read_text())
    assert manifest["model_name"] == "default" and manifest["hf"]["commit"] == COMMIT
    assert manifest["hf"]["files"]["coarse"] == {"path": "coarse.pth", "sha256": _sha256(GOLDEN / "coarse.pth")}
    assert manifest["coarse"]["source_sha256"] == _sha256(GOLDEN / "coarse.pth")
    info = subprocess.run([*cli_command(), "info", str(tmp_path / "models")], capture_output=True, text=True,
                          timeout=300)
    assert info.returncode == 0, info.stderr


@pytest.mark.slow
def test_cli_list_and_hub_error(hf_home: Path, tmp_path: Path):
    listing = _run(hf_home, "export", "--hf", "--list")
    assert listing.returncode == 0 and listing.stdout.split() == ["jazz"], listing
    assert "local cache only" in listing.stderr
    proc = _run(hf_home, "export", "--hf", "--hf-model", "rock", "--out", tmp_path / "b")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc
    assert proc.stderr.strip().splitlines()[-1].startswith("vampnet-ort: error: hugggof/vampnet: no fine-tune 'rock'")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("args, fragment", [
    (("--hf", "someone/else", "--out", "B"), "someone/else: codec.pth is not in the Hugging Face cache"),
    (("--hf", "--codec", "codec.pth", "--out", "B"), "--hf downloads codec, coarse and c2f: leave out --codec"),
    (("--hf-model", "jazz", "--codec", "codec.pth", "--coarse", "coarse.pth", "--out", "B"), "--hf-model need --hf"),
    (("--list",), "--list need --hf"),
    (("--revision", "v1", "--out", "B"), "--revision need --hf"),
    (("--hf",), "--out DIR is required"),
    (("--hf", "--list", "--out", "B"), "--list only prints the fine-tunes: leave out --out"),
    (("--out", "B"), "--codec, --coarse required (or --hf [REPO]"),
])
def test_cli_export_arguments(offline_hub: Path, tmp_path: Path, capsys: pytest.CaptureFixture, args, fragment):
    from vampnet_ort.cli import main

    args = [str(tmp_path / "B") if a == "B" else str(GOLDEN / a) if a.endswith(".pth") else a for a in args]
    assert main(["export", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("vampnet-ort: error: ") and fragment in err[-1], err
    assert not (tmp_path / "B").exists()


def test_cli_default_repo_is_the_exporters():
    from vampnet_ort.cli import HF_DEFAULT_REPO

    assert HF_DEFAULT_REPO == DEFAULT_REPO


# ---- online: a stand-in Hub on 127.0.0.1 (tests/hub_testing.py) ----------------------------------------------------

ONLINE_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def hub_repos(hf_home: Path):
    snapshot = hf_home / "hub" / "models--hugggof--vampnet" / "snapshots" / COMMIT
    files = {str(p.relative_to(snapshot)): p.read_bytes() for p in sorted(snapshot.rglob("*.pth"))}
    partial = {k: v for k, v in files.items() if k in ("codec.pth", "coarse.pth")}
    return {"hugggof/vampnet": {"main": (ONLINE_COMMIT, files)}, "someone/partial": {"main": (COMMIT, partial)}}


@pytest.fixture
def online_hub(hub_repos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """huggingface_hub in this process pointed at the stand-in Hub, with an empty cache."""
    from hub_testing import FakeHub

    with FakeHub(hub_repos) as endpoint:
        monkeypatch.setattr(hub_constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(hub_constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield endpoint


def test_online_download_then_offline_from_the_cache(online_hub: str, hub_repos, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    jazz = fetch_model(model="jazz")
    assert jazz.commit == ONLINE_COMMIT
    snapshot = tmp_path / "cache" / "models--hugggof--vampnet" / "snapshots" / ONLINE_COMMIT
    assert jazz.paths["c2f"] == snapshot / "loras/jazz/c2f.pth"
    assert jazz.paths["c2f"].read_bytes() == hub_repos["hugggof/vampnet"]["main"][1]["loras/jazz/c2f.pth"]
    assert list_fine_tunes() == ["jazz"] and list_fine_tunes("someone/partial") == []
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)  # what was downloaded is there offline
    assert fetch_model(model="jazz").paths == jazz.paths


@pytest.mark.parametrize("call, message", [
    (lambda: fetch_model(model="rock"), r"hugggof/vampnet: no fine-tune 'rock' \(loras/rock/coarse.pth is missing\); "
                                        r"`vampnet-ort export --hf hugggof/vampnet --list` lists the fine-tunes"),
    (lambda: fetch_model(model="half"), r"no fine-tune 'half' \(loras/half/c2f.pth is missing\)"),
    (lambda: fetch_model("someone/partial"), r"someone/partial: the repository has no file c2f.pth"),
    (lambda: fetch_model("nobody/nothing"), r"nobody/nothing: no such model repository on the Hugging Face Hub "
                                            r"\(or it is private or gated"),
    (lambda: fetch_model(revision="v9"), r"hugggof/vampnet: no revision 'v9' \(give a branch, tag or commit"),
    (lambda: list_fine_tunes("nobody/nothing"), r"no such model repository"),
    (lambda: list_fine_tunes(revision="v9"), r"no revision 'v9'"),
])
def test_online_errors_are_one_line(online_hub: str, call, message: str):
    with pytest.raises(HubError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_cli_downloads_with_progress(hub_repos, tmp_path: Path):
    from hub_testing import FakeHub

    # huggingface_hub draws its bars on a terminal only; TQDM_POSITION=-1 is its switch to draw them anyway
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), PYTHONWARNINGS="ignore", TQDM_POSITION="-1")
    for name in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        env.pop(name, None)
    with FakeHub(hub_repos) as endpoint:
        env["HF_ENDPOINT"] = endpoint
        proc = subprocess.run([*cli_command(), "export", "--hf", "--hf-model", "jazz", "--quantize", "int8",
                               "--out", str(tmp_path / "jazz")], capture_output=True, text=True, env=env,
                              timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "hugggof/vampnet: loras/jazz/c2f.pth" in proc.stderr and "100%" in proc.stderr  # huggingface_hub's bars
    manifest = json.loads((tmp_path / "jazz" / "vampnet.json").read_text())
    assert manifest["model_name"] == "jazz" and manifest["hf"]["commit"] == ONLINE_COMMIT
    assert manifest["files"]["coarse.onnx"]["precision"] == "int8"
    blobs = tmp_path / "hf" / "hub" / "models--hugggof--vampnet" / "blobs"
    assert {p.name for p in blobs.iterdir()} == {v["sha256"] for v in manifest["hf"]["files"].values()}
