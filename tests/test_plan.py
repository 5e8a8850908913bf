"""Plan, then run: one `vampnet-ort vamp` checks its input, its output directory and its samples once each, before
the bundle is loaded; `plan_file` needs only the manifest (``bundle.read_manifest_info``: no hashing)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from vampnet_ort import audio, cli, fileio, paths, pipeline
from vampnet_ort.bundle import read_manifest_info
from vampnet_ort.options import MaskOptions, VampOptions


def test_one_cli_vamp_checks_each_thing_once(bundle: Path, clip: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calls: Counter = Counter()
    check_input = paths.check_input_file
    probe = fileio.probe_writable
    isfinite = np.isfinite

    def counted_check_input(path, what="input"):
        calls["stat input"] += Path(path) == clip
        return check_input(path, what)

    def counted_probe(path):
        calls["probe output dir"] += 1
        return probe(path)

    def counted_isfinite(x, *args, **kwargs):
        calls["NaN scan of the input"] += np.shape(x) in ((11025, 2), (2, 11025))
        return isfinite(x, *args, **kwargs)

    for module in (paths, pipeline, audio):
        if hasattr(module, "check_input_file"):
            monkeypatch.setattr(module, "check_input_file", counted_check_input)
    monkeypatch.setattr(paths, "probe_writable", counted_probe)
    monkeypatch.setattr(np, "isfinite", counted_isfinite)
    out = tmp_path / "out.wav"
    assert cli.main(["vamp", str(clip), str(out), "--models", str(bundle), "-q", "--steps", "2"]) == 0
    assert out.is_file()
    assert calls == {"stat input": 1, "probe output dir": 1, "NaN scan of the input": 1}


def test_plan_file_needs_only_the_manifest(bundle: Path, clip: Path, tmp_path: Path) -> None:
    info = read_manifest_info(bundle)
    job = pipeline.plan_file(info, clip, tmp_path / "o.wav", VampOptions(variations=2))
    assert job.outputs == (tmp_path / "o_0.wav", tmp_path / "o_1.wav") and job.n_codebooks == info.n_codebooks
    with pytest.raises(ValueError, match="beyond the model's 14 codebooks"):
        pipeline.plan_file(info, clip, tmp_path / "o.wav", VampOptions(mask=MaskOptions(upper_codebook_mask=15)))
    with pytest.raises(ValueError, match="no such file"):
        pipeline.plan_file(info, tmp_path / "missing.wav", tmp_path / "o.wav")
    written, result = pipeline.Pipeline(bundle).run(job)
    assert [p.name for p in written] == ["o_0.wav", "o_1.wav"] and result.audio.shape[0] == 2
