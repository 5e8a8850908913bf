"""One session shared by 4 threads and 4 sessions in parallel give results identical to serial runs; 1000 runs
of each op keep the process RSS flat."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest

import vampnet_ort
from fuzzing import SPECS, build_model
from op_testing import UNDER_SANITIZER, rss_bytes


def _valid_case(op_name: str, seed: int = 0):
    """A model of the op built for seed's valid case, that case's feeds, and its attributes."""
    spec = SPECS[op_name]
    rng = np.random.default_rng(seed)
    feeds, attributes = spec.make_feeds(rng)
    model = build_model(spec, feeds, attributes, list(feeds))
    return model, feeds, attributes


def _session(model: bytes, threads: int = 1) -> ort.InferenceSession:
    return vampnet_ort.create_session(model, intra_op_threads=threads)


@pytest.mark.parametrize("op_name", sorted(SPECS))
def test_shared_session_and_parallel_sessions_match_serial(op_name: str) -> None:
    model, first_feeds, first_attributes = _valid_case(op_name, 0)
    # The model has fully dynamic dims, so feeds of the same ranks (and attributes) but other shapes run through it.
    cases = [_valid_case(op_name, seed)[1:] for seed in range(8)]
    feeds_list = [f for f, attributes in cases
                  if attributes == first_attributes and all(f[k].ndim == first_feeds[k].ndim for k in f)]
    serial_session = _session(model)
    expected = [serial_session.run(None, f) for f in feeds_list]

    shared = _session(model, threads=2)
    barrier = threading.Barrier(4)

    def run_shared(i: int):
        barrier.wait()
        return [shared.run(None, feeds_list[j % len(feeds_list)]) for j in range(i, i + 20)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run_shared, range(4)))
    for i, outs in enumerate(results):
        for j, out in enumerate(outs):
            for got, want in zip(out, expected[(i + j) % len(feeds_list)]):
                np.testing.assert_array_equal(got, want)

    def run_own_session(i: int):
        session = _session(model, threads=1 + i % 2)
        return [session.run(None, f) for f in feeds_list]

    with ThreadPoolExecutor(4) as pool:
        per_session = list(pool.map(run_own_session, range(4)))
    for outs in per_session:
        for out, want in zip(outs, expected):
            for got, w in zip(out, want):
                np.testing.assert_array_equal(got, w)


@pytest.mark.skipif(UNDER_SANITIZER, reason="ASan quarantines freed memory; measured in the plain run")
@pytest.mark.parametrize("op_name", sorted(SPECS))
def test_thousand_runs_keep_rss_flat(op_name: str) -> None:
    model, feeds, _ = _valid_case(op_name)
    session = _session(model)
    for _ in range(200):  # warm up allocator arenas
        session.run(None, feeds)
    before = rss_bytes()
    for _ in range(1000):
        session.run(None, feeds)
    growth = rss_bytes() - before
    assert growth < 2 * 1024 * 1024, f"{op_name}: RSS grew by {growth / 1e6:.1f} MB over 1000 runs"
