// RMSNorm: Y = X * rsqrt(mean(X^2, last axis) + epsilon) * scale.   X [..., D] float, scale [D] float.
#pragma once
#include "common.h"
#include "op_contract.h"

struct OrtCustomOp;

namespace vampnet {

constexpr const char* kRMSNorm = contract::RMSNorm::kName;

// Validates shapes; returns the number of rows (product of all but the last dim).
int64_t rms_norm_check(const Shape& x, const Shape& scale);
void rms_norm(const float* x, const float* scale, float* y, int64_t rows, int64_t dim, float epsilon,
              const Parallel& par);
// The ONNX Runtime custom op (static lifetime).
const OrtCustomOp* rms_norm_op();

}  // namespace vampnet
