"""The opsets every reference function is written against.

``vampnet`` is the custom-op domain (version 1); ``op`` is the standard ONNX opset the functions (and every
exported graph) use. Opset 20 is the first with ``Gelu(approximate="tanh")``.
"""

from __future__ import annotations

from onnxscript import opset20 as op
from onnxscript.values import Opset

DOMAIN = "vampnet"
DOMAIN_VERSION = 1
ONNX_OPSET = 20
# IR version of the models we write: ORT 1.31 accepts up to 13; 10 is understood by every ORT >= 1.16.
IR_VERSION = 10

vampnet = Opset(DOMAIN, DOMAIN_VERSION)

__all__ = ["DOMAIN", "DOMAIN_VERSION", "IR_VERSION", "ONNX_OPSET", "op", "vampnet"]
