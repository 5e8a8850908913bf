"""Every op's contract is stated once, in ops/contract.py; everything that restates part of it agrees with it.

Checked here: the native op list (what the ORT library registers, with its input/output types), the onnxscript
reference functions (names, input names and types, attributes, defaults), ALL_FUNCTIONS, the pybind11 defaults,
the exporter's attribute values, the kernels' defaults (by running them without the attribute) and the README's
op table.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto

from op_testing import op_model, run_both, run_native
from vampnet_ort import _kernels, ops
from vampnet_ort.export import vampnet_weights
from vampnet_ort.ops import contract

README = Path(__file__).resolve().parents[1] / "README.md"
TYPE_CODES = {contract.FLOAT: TensorProto.FLOAT, contract.INT64: TensorProto.INT64, contract.UINT8: TensorProto.UINT8}
ANNOTATIONS = {"FLOAT": contract.FLOAT, "INT64": contract.INT64, "UINT8": contract.UINT8}


def test_contract_names_are_unique_and_complete() -> None:
    names = [c.name for c in contract.CONTRACTS]
    assert len(set(names)) == len(names)
    assert set(contract.BY_NAME) == set(names)


def test_every_op_has_a_case_table_entry() -> None:
    """tests/op_cases.py feeds the op tests, the fuzzer and bench_ops.py: a new op cannot be forgotten there."""
    from op_cases import CASES

    assert sorted(CASES) == sorted(c.name for c in contract.CONTRACTS)
    for name, case in CASES.items():
        assert case.contract is contract.BY_NAME[name]


def test_native_op_list_matches_the_contracts() -> None:
    native = {name: (inputs, outputs) for name, inputs, outputs in _kernels.native_ops()}
    assert _kernels.DOMAIN == ops.DOMAIN
    assert sorted(native) == sorted(c.name for c in contract.CONTRACTS)
    for c in contract.CONTRACTS:
        inputs, outputs = native[c.name]
        assert inputs == [TYPE_CODES[t.dtype] for t in c.inputs], c.name
        assert outputs == [TYPE_CODES[t.dtype] for t in c.outputs], c.name


def test_reference_functions_match_the_contracts() -> None:
    assert sorted(f.name for f in ops.ALL_FUNCTIONS) == sorted(c.name for c in contract.CONTRACTS)
    for function in ops.ALL_FUNCTIONS:
        c = contract.BY_NAME[function.name]
        proto = function.to_function_proto()
        assert proto.domain == ops.DOMAIN
        assert list(proto.input) == [t.name for t in c.inputs], c.name
        assert len(proto.output) == len(c.outputs), c.name
        signature = inspect.signature(function.function)
        for t in c.inputs:
            assert ANNOTATIONS[str(signature.parameters[t.name].annotation)] == t.dtype, (c.name, t.name)
        required = {a.name for a in c.attributes if a.default is None}
        assert set(proto.attribute) == required, c.name
        defaults = {a.name: (a.i if a.type == 2 else a.f) for a in proto.attribute_proto}
        assert set(defaults) == {a.name for a in c.attributes if a.default is not None}, c.name
        for name, value in defaults.items():
            assert value == pytest.approx(c.default(name), rel=1e-7), (c.name, name)


def _pybind_defaults(function) -> dict[str, str]:
    signature = function.__doc__.splitlines()[0]
    return dict(re.findall(r"(\w+): [^,=]+ = ([^,)]+)", signature))


def test_pybind_defaults_match_the_contracts() -> None:
    rms = _pybind_defaults(_kernels.rms_norm)
    assert float(rms["epsilon"]) == pytest.approx(contract.RMS_NORM.default("epsilon"), rel=1e-7)
    attention = contract.RELATIVE_POSITION_ATTENTION
    for function in (_kernels.relative_position_attention, _kernels.relative_position_buckets):
        found = _pybind_defaults(function)
        assert int(found["num_buckets"]) == attention.default("num_buckets")
        assert int(found["max_distance"]) == attention.default("max_distance")


def test_exporter_uses_the_contract_values() -> None:
    assert vampnet_weights.RMS_EPSILON == contract.RMS_NORM.default("epsilon")
    assert vampnet_weights.NUM_BUCKETS == contract.RELATIVE_POSITION_ATTENTION.default("num_buckets")
    assert vampnet_weights.MAX_DISTANCE == contract.RELATIVE_POSITION_ATTENTION.default("max_distance")
    config = vampnet_weights.VampNetConfig(n_heads=2, n_layers=1, n_codebooks=4, n_conditioning_codebooks=0,
                                           latent_dim=8, embedding_dim=8, vocab_size=16)
    assert (config.num_buckets, config.max_distance) == (vampnet_weights.NUM_BUCKETS, vampnet_weights.MAX_DISTANCE)


def test_rms_norm_kernel_and_function_default_epsilon() -> None:
    # mean(x^2) = 1e-10, far below epsilon: the output depends on which epsilon the op used.
    x = np.full((2, 8), 1e-5, np.float32)
    scale = np.ones(8, np.float32)
    model = op_model("RMSNorm", {"X": x, "scale": scale}, [("Y", TensorProto.FLOAT, ["a", "b"])])
    assert not model.graph.node[0].attribute
    native, reference = run_both(model, {"X": x, "scale": scale})
    epsilon = np.float32(contract.RMS_NORM.default("epsilon"))
    expected = x / np.sqrt(np.float32(1e-10) + epsilon)
    np.testing.assert_allclose(native[0], expected, rtol=1e-5)
    np.testing.assert_allclose(reference[0], expected, rtol=1e-5)


def test_attention_kernel_and_function_default_buckets() -> None:
    rng = np.random.default_rng(0)
    c = contract.RELATIVE_POSITION_ATTENTION
    heads, time_, dim, buckets = 2, 160, 8, int(c.default("num_buckets"))
    feeds = {"qkv": rng.standard_normal((1, time_, 3 * dim)).astype(np.float32),
             "rel_bias": rng.standard_normal((buckets, heads)).astype(np.float32)}
    outputs = [("out", TensorProto.FLOAT, ["b", "t", "d"])]

    def model(**attributes: int):
        return op_model("RelativePositionAttention", feeds, outputs, {"num_heads": heads, **attributes})

    native, reference = run_both(model(), feeds)
    explicit = run_native(model(num_buckets=buckets, max_distance=int(c.default("max_distance"))), feeds)[0]
    np.testing.assert_array_equal(native[0], explicit)
    np.testing.assert_allclose(native[0], reference[0], rtol=1e-4, atol=1e-5)
    # ...and the attributes do matter at this length (T = 160 > max_distance 20).
    assert not np.allclose(native[0], run_native(model(max_distance=20), feeds)[0])


def test_readme_op_table_matches_the_contracts() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \|", README.read_text(), flags=re.MULTILINE)
    table = {name: cell for name, cell in rows if name in contract.BY_NAME or name[0].isupper()}
    assert sorted(table) == sorted(c.name for c in contract.CONTRACTS)
    for c in contract.CONTRACTS:
        for attribute in c.attributes:
            assert f"`{attribute.name}`" in table[c.name], (c.name, attribute.name)
            if attribute.default is not None:
                stated = re.search(rf"`{attribute.name}` \(([^)]+)\)", table[c.name])
                assert stated is not None, (c.name, attribute.name)
                assert float(stated.group(1)) == pytest.approx(attribute.default), (c.name, attribute.name)
