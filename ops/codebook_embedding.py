"""Reference function of ``vampnet.CodebookEmbedding``.

codes [B, C, T] int64, tables [C, V+1, D] float (per-codebook tables with the 1x1 projection folded in, row V
is MASK), bias [D] -> Y [B, T, D] = bias + sum_c tables[c, codes[b, c, t], :].
"""

from __future__ import annotations

from onnxscript import FLOAT, INT64, script

from ._opset import op, vampnet


@script(vampnet, default_opset=op)
def CodebookEmbedding(codes: INT64, tables: FLOAT, bias: FLOAT) -> FLOAT:
    table_shape = op.Shape(tables)
    rows = op.Slice(table_shape, op.Constant(value_ints=[1]), op.Constant(value_ints=[2]))  # V + 1
    width = op.Slice(table_shape, op.Constant(value_ints=[2]), op.Constant(value_ints=[3]))  # D
    num_codebooks = op.Slice(table_shape, op.Constant(value_ints=[0]), op.Constant(value_ints=[1]))  # C
    # Row index into the flattened [C * (V+1), D] table: c * (V+1) + code.
    offsets = op.Mul(op.Range(op.Constant(value_int=0), op.Squeeze(num_codebooks), op.Constant(value_int=1)),
                     op.Squeeze(rows))
    flat_index = codes + op.Unsqueeze(offsets, op.Constant(value_ints=[0, 2]))  # [B, C, T]
    flat_table = op.Reshape(tables, op.Concat(op.Constant(value_ints=[-1]), width, axis=0))
    gathered = op.Gather(flat_table, flat_index, axis=0)  # [B, C, T, D]
    Y = op.ReduceSum(gathered, op.Constant(value_ints=[1]), keepdims=0) + bias
    return Y
