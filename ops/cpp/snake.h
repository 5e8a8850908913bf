// Snake: Y = X + sin^2(alpha * X) / (alpha + 1e-9), alpha per channel (the LAC codec's activation).
// X [B, C, L] float; alpha [1, C, 1] or [C] float. channels_last: X [B, L, C], alpha [1, 1, C] or [C].
#pragma once
#include "common.h"
#include "op_contract.h"

struct OrtCustomOp;

namespace vampnet {

constexpr const char* kSnake = contract::Snake::kName;

struct SnakeDims {
  int64_t batch, channels, length;
  bool channels_last = false;
};
void snake_check_attributes(int64_t channels_last);
SnakeDims snake_check(const Shape& x, const Shape& alpha, bool channels_last = false);
void snake(const float* x, const float* alpha, float* y, const SnakeDims& dims, const Parallel& par);
const OrtCustomOp* snake_op();

}  // namespace vampnet
