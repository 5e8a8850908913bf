"""vampnet.CodebookEmbedding: golden parity, kernel == reference == numpy, token-range errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto

from op_cases import numpy_embedding
from op_testing import GOLDEN, golden, inferred_output_shapes, native_error, op_model, run_both, run_native
from vampnet_ort import _kernels


def embedding_model(codes: np.ndarray, tables: np.ndarray, bias: np.ndarray):
    feeds = {"codes": codes, "tables": tables, "bias": bias}
    return op_model("CodebookEmbedding", feeds, [("Y", TensorProto.FLOAT, ["codes_d0", "codes_d2", "tables_d2"])])


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 3),
    codebooks=st.sampled_from([1, 4, 14]),
    time=st.sampled_from([1, 2, 37, 173]),
    vocab=st.sampled_from([1, 7, 1024]),
    dim=st.sampled_from([3, 64, 100]),
    seed=st.integers(0, 2**31 - 1),
)
def test_kernel_matches_reference_and_numpy(batch, codebooks, time, vocab, dim, seed) -> None:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, vocab + 1, size=(batch, codebooks, time), dtype=np.int64)  # includes MASK = vocab
    tables = rng.standard_normal((codebooks, vocab + 1, dim)).astype(np.float32)
    bias = rng.standard_normal(dim).astype(np.float32)
    expected = numpy_embedding(codes, tables, bias)
    feeds = {"codes": codes, "tables": tables, "bias": bias}
    (native,), (reference,) = run_both(embedding_model(codes, tables, bias), feeds)
    np.testing.assert_allclose(native, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reference, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(_kernels.codebook_embedding(codes, tables, bias), native)


def folded_tables(model_ckpt: str, n_codebooks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Independent numpy folding of upstream's lookup -> concat -> 1x1 conv into per-codebook tables (the golden
    checkpoints read by torch.load, independently of the exporter's reader)."""
    torch = pytest.importorskip("torch")

    model = torch.load(GOLDEN / model_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    codec = torch.load(GOLDEN / "codec.pth", map_location="cpu", weights_only=True)["state_dict"]
    mask_rows = model["embedding.special.MASK"].numpy()
    weight = model["embedding.out_proj.weight"].numpy()[:, :, 0]  # [D, C*8]
    bias = model["embedding.out_proj.bias"].numpy()
    rows = [
        np.concatenate([codec[f"quantizer.quantizers.{c}.codebook.weight"].numpy(), mask_rows[c : c + 1]])
        for c in range(n_codebooks)
    ]
    tables = np.stack([r.astype(np.float64) @ weight[:, 8 * c : 8 * c + 8].T.astype(np.float64)
                       for c, r in enumerate(rows)]).astype(np.float32)
    latents_table = np.stack(rows)  # [C, V+1, 8]
    return tables, bias, latents_table


@pytest.mark.parametrize("name, ckpt, n_codebooks", [("coarse", "coarse.pth", 4), ("c2f", "c2f.pth", 14)])
def test_golden_embedding(name: str, ckpt: str, n_codebooks: int) -> None:
    data = golden("embedding.npz")
    codes = data[f"{name}_codes"]
    tables, bias, latents_table = folded_tables(ckpt, n_codebooks)
    # The lookup itself reproduces upstream's from_codes latents exactly.
    latents = np.concatenate([latents_table[c][codes[:, c, :]] for c in range(n_codebooks)], axis=-1)
    np.testing.assert_array_equal(latents.transpose(0, 2, 1), data[f"{name}_latents"])
    expected = data[f"{name}_embedding"].transpose(0, 2, 1)  # [B, T, D]
    feeds = {"codes": codes, "tables": tables, "bias": bias}
    (native,), (reference,) = run_both(embedding_model(codes, tables, bias), feeds)
    np.testing.assert_allclose(native, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(reference, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(_kernels.codebook_embedding(codes, tables, bias), expected, atol=1e-5, rtol=0)


def test_threads_and_shape_inference() -> None:
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 1025, size=(2, 14, 575), dtype=np.int64)
    tables = rng.standard_normal((14, 1025, 128)).astype(np.float32)
    bias = rng.standard_normal(128).astype(np.float32)
    model = embedding_model(codes, tables, bias)
    feeds = {"codes": codes, "tables": tables, "bias": bias}
    np.testing.assert_array_equal(run_native(model, feeds, threads=1)[0], run_native(model, feeds, threads=2)[0])
    assert inferred_output_shapes(model) == [["codes_d0", "codes_d2", "tables_d2"]]


@pytest.mark.parametrize("bad_id, where", [(1025, (1, 2, 3)), (-1, (0, 0, 0)), (2**40, (0, 3, 6))])
def test_token_ids_out_of_range_are_reported(bad_id: int, where: tuple[int, int, int]) -> None:
    codes = np.zeros((2, 4, 7), np.int64)
    codes[where] = bad_id
    tables = np.zeros((4, 1025, 8), np.float32)
    bias = np.zeros(8, np.float32)
    feeds = {"codes": codes, "tables": tables, "bias": bias}
    message = f"token id {bad_id} at [{where[0]}, {where[1]}, {where[2]}] is out of range [0, 1024]"
    assert message in native_error(embedding_model(codes, tables, bias), feeds)
    with pytest.raises(ValueError, match=r"CodebookEmbedding: token id"):
        _kernels.codebook_embedding(codes, tables, bias)


@pytest.mark.parametrize(
    "codes_shape, tables_shape, bias_shape, message",
    [
        ((2, 4, 7), (3, 1025, 8), (8,), "input 'tables' dim 0 is 3 but must equal the number of codebooks"),
        ((2, 4, 7), (4, 1025, 8), (9,), "input 'bias' dim 0 is 9 but must equal the embedding width"),
        ((4, 7), (4, 1025, 8), (8,), "input 'codes' must have rank 3"),
        ((2, 4, 0), (4, 1025, 8), (8,), "input 'codes' is empty"),
        ((2, 4, 7), (4, 1, 8), (8,), "must be vocab_size + 1 >= 2"),
    ],
)
def test_bad_shapes_are_reported(codes_shape, tables_shape, bias_shape, message) -> None:
    feeds = {
        "codes": np.zeros(codes_shape, np.int64),
        "tables": np.zeros(tables_shape, np.float32),
        "bias": np.zeros(bias_shape, np.float32),
    }
    model = op_model("CodebookEmbedding", feeds, [("Y", TensorProto.FLOAT, ["a", "b", "c"])])
    assert message in native_error(model, feeds)
