"""Writing ONNX nodes: the one node writer the graph builders share (the transformer forward, the decode loops,
the quantized linears). Every value it creates is named ``<scope>/<hint>_<n>``, unique within the writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import onnx
from onnx import TensorProto, helper


@dataclass
class NodeWriter:
    """Appends nodes to one graph; every value it creates is named ``<scope>/<hint>_<n>`` (unique)."""

    scope: str
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    _count: int = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{self.scope}/{hint}_{self._count}"

    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        outputs: int | Sequence[str] = 1,
        *,
        domain: str = "",
        hint: str | None = None,
        **attrs: Any,
    ) -> list[str]:
        hint = hint or op_type
        names = [self.fresh(hint) for _ in range(outputs)] if isinstance(outputs, int) else list(outputs)
        self.nodes.append(
            helper.make_node(op_type, list(inputs), names, name=self.fresh(f"node_{hint}"), domain=domain, **attrs)
        )
        return names

    def op1(self, op_type: str, inputs: Sequence[str], **kwargs: Any) -> str:
        return self.op(op_type, inputs, 1, **kwargs)[0]

    def const_ints(self, values: Sequence[int], hint: str = "const") -> str:
        tensor = helper.make_tensor(self.fresh(hint + "_value"), TensorProto.INT64, [len(values)], list(values))
        return self.op1("Constant", [], hint=hint, value=tensor)

    def const_int(self, value: int, hint: str = "const") -> str:
        tensor = helper.make_tensor(self.fresh(hint + "_value"), TensorProto.INT64, [], [int(value)])
        return self.op1("Constant", [], hint=hint, value=tensor)

    def const_float(self, value: float, hint: str = "const") -> str:
        tensor = helper.make_tensor(self.fresh(hint + "_value"), TensorProto.FLOAT, [], [float(value)])
        return self.op1("Constant", [], hint=hint, value=tensor)
