#include "film.h"

#include <algorithm>

#include "ort_op.h"

namespace vampnet {

FiLMDims film_check(const Shape& x, const Shape& gamma, const Shape& beta) {
  check_rank(kFiLM, "X", x, 3);
  check_nonempty(kFiLM, "X", x);
  check_rank(kFiLM, "gamma", gamma, 2);
  check_rank(kFiLM, "beta", beta, 2);
  check_dim(kFiLM, "gamma", gamma, 1, x[2], "the last dim of X");
  check_dim(kFiLM, "beta", beta, 1, x[2], "the last dim of X");
  check(gamma[0] == x[0] || gamma[0] == 1, kFiLM,
        "input 'gamma' dim 0 must be 1 or the batch size of X (" + std::to_string(x[0]) + "), got shape " +
            shape_str(gamma));
  check(beta[0] == gamma[0], kFiLM,
        "inputs 'gamma' and 'beta' must have the same shape, got " + shape_str(gamma) + " and " + shape_str(beta));
  return FiLMDims{x[0], x[1], x[2], gamma[0] == 1};
}

namespace {
VAMPNET_CPU_DISPATCH void film_row(const float* x, const float* gamma, const float* beta, float* y, int64_t dim) {
  for (int64_t i = 0; i < dim; ++i) y[i] = x[i] * (1.0f + gamma[i]) + beta[i];
}
}  // namespace

void film(const float* x, const float* gamma, const float* beta, float* y, const FiLMDims& d,
          const Parallel& par) {
  const int64_t rows = d.batch * d.time;
  const int64_t rows_per_block = std::max<int64_t>(1, 65536 / d.dim);
  parallel_blocks(par, rows, rows_per_block, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = d.broadcast_cond ? 0 : r / d.time;
      const float* g = gamma + b * d.dim;
      const float* be = beta + b * d.dim;
      film_row(x + r * d.dim, g, be, y + r * d.dim, d.dim);
    }
  });
}

namespace {
struct FiLMKernel : OrtKernel<FiLMKernel> {
  FiLMKernel(const OrtApi&, const OrtKernelInfo*) {}
  void Compute(Ort::KernelContext& ctx) {
    const InputView x = get_input<contract::FiLM>(ctx, 0);
    const InputView gamma = get_input<contract::FiLM>(ctx, 1);
    const InputView beta = get_input<contract::FiLM>(ctx, 2);
    const FiLMDims dims = film_check(x.shape, gamma.shape, beta.shape);
    float* y = get_output<float>(ctx, 0, x.shape);
    film(x.as<float>(), gamma.as<float>(), beta.as<float>(), y, dims, OrtParallel(ctx));
  }
};

// Name, input and output types: ops/contract.py (via the generated op_contract.h).
struct FiLMOp : OrtOp<FiLMOp, FiLMKernel, contract::FiLM> {};
}  // namespace

const OrtCustomOp* film_op() {
  static const FiLMOp op;
  return &op;
}

}  // namespace vampnet
