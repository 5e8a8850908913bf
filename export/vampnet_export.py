"""Export one VampNet stage (coarse or c2f): checkpoint (+ codec codebooks, + optional LoRA file) -> ONNX models.

``logits_model`` builds an in-memory model (weights inline; tests and small models). ``export_stage`` writes the
stage's graphs into a directory with the weights streamed to one external-data file ``<stage>.onnx.data`` that
every graph of the stage shares (the logits graph and the decode graph hold the very same tensors).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Union

import numpy as np
import onnx

from vampnet_ort.version import __version__

from .checkpoint import Checkpoint, file_sha256, load_checkpoint, load_lora_file
from .transformer_graph import TransformerNames, build_logits_model, store_transformer_weights
from .vampnet_weights import VampNetConfig, VampNetWeights
from .weight_store import ExternalWeights, InlineWeights, WeightStore

CheckpointSource = Union[str, os.PathLike, Checkpoint]
LoraSource = Union[None, str, os.PathLike, Mapping[str, np.ndarray]]


def as_checkpoint(source: CheckpointSource, what: str) -> Checkpoint:
    if isinstance(source, Checkpoint):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_checkpoint(source)
    raise TypeError(f"{what}: expected a .pth path or a Checkpoint, got {type(source).__name__}")


@dataclass(frozen=True)
class LoraInput:
    tensors: dict[str, np.ndarray]
    source: str
    sha256: str | None  # of the file, when it came from one


def as_lora(source: LoraSource) -> LoraInput | None:
    if source is None:
        return None
    if isinstance(source, (str, os.PathLike)):
        return LoraInput(load_lora_file(source), str(source), file_sha256(source))
    if isinstance(source, Mapping):
        return LoraInput({str(k): np.asarray(v, dtype=np.float32) for k, v in source.items()}, "LoRA tensors", None)
    raise TypeError(f"LoRA: expected a path or a mapping of lora_A/lora_B tensors, got {type(source).__name__}")


def model_metadata(
    weights: VampNetWeights,
    kwargs: Mapping[str, Any],
    graph: str,
    codec: Checkpoint,
    lora: LoraInput | None,
    precision: str = "float32",
) -> dict[str, str]:
    """metadata_props of an exported VampNet graph."""
    meta = {
        "vampnet_ort.version": __version__,
        "vampnet_ort.graph": graph,
        "vampnet_ort.precision": precision,
        "vampnet_ort.model_config": weights.config.to_json(),
        "vampnet_ort.source_kwargs": json.dumps(dict(kwargs), sort_keys=True, default=str),
        "vampnet_ort.source_sha256": weights.sha256,
        "vampnet_ort.codec_sha256": codec.sha256,
    }
    if lora is not None:
        meta["vampnet_ort.lora_source"] = Path(lora.source).name if lora.sha256 else lora.source
        if lora.sha256:
            meta["vampnet_ort.lora_sha256"] = lora.sha256
    return meta


@dataclass
class StoredStage:
    """A stage whose weights sit in a store: everything needed to emit any of its graphs."""

    config: VampNetConfig
    names: TransformerNames
    store: WeightStore
    weights: VampNetWeights
    checkpoint: Checkpoint
    codec: Checkpoint
    lora: LoraInput | None

    def metadata(self, graph: str) -> dict[str, str]:
        return model_metadata(
            self.weights, self.checkpoint.kwargs, graph, self.codec, self.lora, self.names.precision
        )

    @property
    def precision(self) -> str:
        return self.names.precision


def store_stage(
    checkpoint: CheckpointSource,
    codec: CheckpointSource,
    store: WeightStore,
    lora: LoraSource = None,
    quantize: str = "none",
) -> StoredStage:
    ckpt = as_checkpoint(checkpoint, "VampNet checkpoint")
    codec_ckpt = as_checkpoint(codec, "codec checkpoint")
    lora_in = as_lora(lora)
    weights = VampNetWeights(
        ckpt, codec_ckpt, lora_in.tensors if lora_in else None, lora_in.source if lora_in else "LoRA file"
    )
    names = store_transformer_weights(weights, store, quantize=quantize)
    return StoredStage(weights.config, names, store, weights, ckpt, codec_ckpt, lora_in)


def logits_model(
    checkpoint: CheckpointSource,
    codec: CheckpointSource,
    lora: LoraSource = None,
    expose_activations: bool = False,
    quantize: str = "none",
) -> onnx.ModelProto:
    """The logits graph with inline weights (keep to models well under 2 GB); quantize: none | int8 | int4."""
    stage = store_stage(checkpoint, codec, InlineWeights(), lora, quantize)
    return build_logits_model(
        stage.config, stage.names, stage.store.initializers, stage.metadata("logits"), expose_activations
    )


GraphFactory = Callable[[StoredStage], onnx.ModelProto]


def export_stage(
    out_dir: str | os.PathLike,
    stage_name: str,
    checkpoint: CheckpointSource,
    codec: CheckpointSource,
    lora: LoraSource = None,
    graphs: Mapping[str, GraphFactory] | None = None,
    quantize: str = "none",
) -> tuple[StoredStage, list[Path]]:
    """Write ``<stage>.onnx.data`` and one ``<file>`` per entry of `graphs` (file name -> builder) into `out_dir`.

    quantize: ``none`` | ``int8`` | ``int4``, the precision of the stage's linears (docs/QUANTIZATION.md).

    Each model is checked with ``onnx.checker.check_model(path, full_check=True)`` after writing.
    """
    out = Path(out_dir)
    data_name = f"{stage_name}.onnx.data"
    store = ExternalWeights(out, data_name)
    try:
        stage = store_stage(checkpoint, codec, store, lora, quantize)
    finally:
        store.close()
    written = [out / data_name]
    for file_name, factory in (graphs or {}).items():
        model = factory(stage)
        path = out / file_name
        onnx.save_model(model, str(path))
        del model
        onnx.checker.check_model(str(path), full_check=True)
        written.append(path)
    return stage, written


def logits_graph(stage: StoredStage) -> onnx.ModelProto:
    return build_logits_model(stage.config, stage.names, stage.store.initializers, stage.metadata("logits"))
