// FiLM: Y[b, t, d] = X[b, t, d] * (1 + gamma[b, d]) + beta[b, d].
// X [B, T, D] float; gamma, beta [B, D] or [1, D] float (precomputed from the conditioning vector by the graph,
// see docs/ARCHITECTURE.md), broadcast over time.
#pragma once
#include "common.h"
#include "op_contract.h"

struct OrtCustomOp;

namespace vampnet {

constexpr const char* kFiLM = contract::FiLM::kName;

struct FiLMDims {
  int64_t batch, time, dim;
  bool broadcast_cond;  // gamma/beta have a batch dim of 1
};
FiLMDims film_check(const Shape& x, const Shape& gamma, const Shape& beta);
void film(const float* x, const float* gamma, const float* beta, float* y, const FiLMDims& dims,
          const Parallel& par);
const OrtCustomOp* film_op();

}  // namespace vampnet
