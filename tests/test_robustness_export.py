"""Robustness round 2 (issue 13), the exporter: --overwrite (#2), non-finite weights (#3), concurrent exports (#13)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cli_testing import cli_command
from op_testing import GOLDEN

from vampnet_ort.export import CheckpointError, load_checkpoint, save_lora_file
from vampnet_ort.export import bundle as export_module
from vampnet_ort.export.bundle import ExportError, export_bundle
from vampnet_ort.export.random_checkpoint import random_lora_state, random_vampnet_checkpoint, vampnet_kwargs

TINY_COARSE = vampnet_kwargs(n_heads=2, n_layers=1, n_codebooks=4, embedding_dim=16)


def run(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))


@pytest.fixture(scope="module")
def golden_codec():
    return load_checkpoint(GOLDEN / "codec.pth")


@pytest.fixture(scope="module")
def coarse():
    return random_vampnet_checkpoint(TINY_COARSE)


def _tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# ---- #2 --overwrite -----------------------------------------------------------------------------------------------

def test_2_overwrite_never_deletes_a_folder_that_is_not_a_bundle(tmp_path: Path, golden_codec, coarse) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("my work")
    (project / "sub").mkdir()
    (project / "sub" / "data.bin").write_bytes(b"\1\2")
    before = _tree(project)
    with pytest.raises(ExportError, match="not a vampnet bundle .*overwrite=True replaces only a bundle"):
        export_bundle(project, codec=golden_codec, coarse=coarse, overwrite=True)
    assert _tree(project) == before
    proc = run("export", "--codec", GOLDEN / "codec.pth", "--coarse", GOLDEN / "coarse.pth", "--out", project,
               "--overwrite")
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "not a vampnet bundle" in proc.stderr and "--overwrite replaces only a bundle" in proc.stderr
    assert _tree(project) == before


def test_2_cli_message_names_the_flag(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("x")
    proc = run("export", "--codec", GOLDEN / "codec.pth", "--coarse", GOLDEN / "coarse.pth", "--out", out)
    assert proc.returncode != 0 and "pass --overwrite" in proc.stderr and "overwrite=True" not in proc.stderr


def test_2_an_input_inside_out_is_refused(tmp_path: Path, golden_codec, coarse) -> None:
    out = export_bundle(tmp_path / "b", codec=golden_codec, coarse=coarse)
    shutil.copy(GOLDEN / "codec.pth", out / "codec.pth")
    shutil.copy(GOLDEN / "coarse.pth", out / "coarse.pth")
    before = _tree(out)
    with pytest.raises(ExportError, match="an input lies inside the output directory"):
        export_bundle(out, codec=out / "codec.pth", coarse=coarse, overwrite=True)
    with pytest.raises(ExportError, match="an input lies inside the output directory"):
        export_bundle(out, codec=load_checkpoint(out / "codec.pth"), coarse=coarse, overwrite=True)
    proc = run("export", "--codec", GOLDEN / "codec.pth", "--coarse", out / "coarse.pth", "--out", out, "--overwrite")
    assert proc.returncode != 0 and "an input lies inside the output directory" in proc.stderr, proc.stderr
    proc = run("export", "--codec", GOLDEN / "codec.pth", "--coarse", out / "coarse.pth", "--out", tmp_path,
               "--overwrite")  # --out . of a project holding the checkpoints
    assert proc.returncode != 0 and "an input lies inside the output directory" in proc.stderr, proc.stderr
    assert _tree(out) == before


def test_2_overwrite_replaces_a_bundle(tmp_path: Path, golden_codec, coarse) -> None:
    out = export_bundle(tmp_path / "b", codec=golden_codec, coarse=coarse)
    (out / "stale.txt").write_text("old")
    export_bundle(out, codec=golden_codec, coarse=coarse, overwrite=True)
    assert not (out / "stale.txt").exists() and (out / "vampnet.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["b"]


# ---- #3 non-finite weights ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_3_non_finite_transformer_weight_is_refused_by_name(tmp_path: Path, golden_codec, value: float) -> None:
    bad = random_vampnet_checkpoint(TINY_COARSE)
    key = "transformer.layers.0.self_attn.w_qs.weight"
    assert key in bad.state
    bad.state[key] = bad.state[key].copy()
    bad.state[key][0, 0] = value
    with pytest.raises(CheckpointError, match=f"'{key}' holds 1 NaN or infinite value"):
        export_bundle(tmp_path / "b", codec=golden_codec, coarse=bad)
    assert list(tmp_path.iterdir()) == []


def test_3_non_finite_codec_weight_is_refused_by_name(tmp_path: Path, coarse) -> None:
    codec = load_checkpoint(GOLDEN / "codec.pth")
    key = next(k for k in codec.state if k.endswith("codebook.weight"))
    codec.state[key] = codec.state[key].copy()
    codec.state[key][3, 1] = np.nan  # gave all-zero codes and silent garbage with rc 0
    with pytest.raises(CheckpointError, match=f"'{key}' holds 1 NaN"):
        export_bundle(tmp_path / "b", codec=codec, coarse=coarse)
    assert list(tmp_path.iterdir()) == []


def test_3_non_finite_lora_is_refused_by_name(tmp_path: Path, golden_codec) -> None:
    lora = random_lora_state(load_checkpoint(GOLDEN / "coarse.pth").kwargs, seed=1)
    key = sorted(lora)[0]
    lora[key] = lora[key].copy()
    lora[key].flat[0] = np.inf
    path = tmp_path / "lora.pth"
    save_lora_file(path, lora)
    with pytest.raises(CheckpointError, match=f"'{key}' holds 1 NaN or infinite"):
        export_bundle(tmp_path / "b", codec=golden_codec, coarse=GOLDEN / "coarse.pth", lora_coarse=path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lora.pth"]


def test_3_overflow_while_folding_is_refused(tmp_path: Path, golden_codec) -> None:
    lora = random_lora_state(load_checkpoint(GOLDEN / "coarse.pth").kwargs, seed=1)
    a_key = sorted(k for k in lora if k.endswith("lora_A"))[0]
    lora[a_key] = np.full_like(lora[a_key], 3e38)  # finite, but W + B @ A overflows float32
    lora[a_key[:-1] + "B"] = np.full_like(lora[a_key[:-1] + "B"], 3e38)
    with pytest.raises(CheckpointError, match=r"\(LoRA merged\)' holds"):
        export_bundle(tmp_path / "b", codec=golden_codec, coarse=GOLDEN / "coarse.pth", lora_coarse=lora)


# ---- #13 concurrent exports to one --out --------------------------------------------------------------------------

def test_13_a_bundle_that_appeared_meanwhile_is_never_replaced(tmp_path: Path, golden_codec, coarse,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "b"
    real_export_codec = export_module.export_codec

    def export_codec_and_race(*args, **kwargs):  # another export finishes while this one runs
        result = real_export_codec(*args, **kwargs)
        out.mkdir()
        (out / "vampnet.json").write_text('{"the": "other export"}')
        return result

    monkeypatch.setattr(export_module, "export_codec", export_codec_and_race)
    with pytest.raises(ExportError, match="appeared while this export ran"):
        export_bundle(out, codec=golden_codec, coarse=coarse)
    assert _tree(out) == {"vampnet.json": b'{"the": "other export"}'}
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no partial or backup directory left


def test_13_overwrite_does_not_replace_a_second_appearance(tmp_path: Path, golden_codec, coarse,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = export_bundle(tmp_path / "b", codec=golden_codec, coarse=coarse)
    real_rename = os.rename

    def rename_then_race(src, dst):  # after the old bundle is moved aside, another export lands at out
        real_rename(src, dst)
        if Path(src) == out:
            out.mkdir()
            (out / "vampnet.json").write_text("{}")

    monkeypatch.setattr(export_module.os, "rename", rename_then_race)
    with pytest.raises(ExportError, match="appeared while this export ran"):
        export_bundle(out, codec=golden_codec, coarse=coarse, overwrite=True)
    assert _tree(out) == {"vampnet.json": b"{}"}
    assert [p.name for p in tmp_path.iterdir()] == ["b"]


def test_13_rename_no_replace(tmp_path: Path) -> None:
    from vampnet_ort.fileio import rename_no_replace

    (tmp_path / "src").mkdir()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileExistsError):
        rename_no_replace(tmp_path / "src", tmp_path / "empty")  # os.rename would replace an empty directory
    rename_no_replace(tmp_path / "src", tmp_path / "dst")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "empty"]
