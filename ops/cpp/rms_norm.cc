#include "rms_norm.h"

#include <algorithm>
#include <cmath>

#include "ort_op.h"

namespace vampnet {

int64_t rms_norm_check(const Shape& x, const Shape& scale) {
  check_min_rank(kRMSNorm, "X", x, 1);
  check_nonempty(kRMSNorm, "X", x);
  check_rank(kRMSNorm, "scale", scale, 1);
  check_dim(kRMSNorm, "scale", scale, 0, x.back(), "the last dim of X");
  check(x.back() > 0, kRMSNorm, "the last dim of X must be > 0, got shape " + shape_str(x));
  return num_elements(x) / x.back();
}

namespace {
constexpr int kLanes = 16;

VAMPNET_CPU_DISPATCH void normalize_row(const float* x, const float* scale, float* y, int64_t dim, float epsilon) {
  float acc[kLanes] = {0.f};
  int64_t i = 0;
  for (; i + kLanes <= dim; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l] * x[i + l];
  }
  for (; i < dim; ++i) acc[i % kLanes] += x[i] * x[i];
  float total = 0.f;
  for (int l = 0; l < kLanes; ++l) total += acc[l];
  const float inv = 1.0f / std::sqrt(total / static_cast<float>(dim) + epsilon);
  for (int64_t j = 0; j < dim; ++j) y[j] = x[j] * inv * scale[j];
}
}  // namespace

void rms_norm(const float* x, const float* scale, float* y, int64_t rows, int64_t dim, float epsilon,
              const Parallel& par) {
  const int64_t rows_per_block = std::max<int64_t>(1, 16384 / dim);
  parallel_blocks(par, rows, rows_per_block, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      normalize_row(x + r * dim, scale, y + r * dim, dim, epsilon);
    }
  });
}

namespace {
struct RMSNormKernel : OrtKernel<RMSNormKernel> {
  float epsilon;
  RMSNormKernel(const OrtApi& api, const OrtKernelInfo* info)
      : epsilon(attr_float(api, info, kRMSNorm, "epsilon", contract::RMSNorm::kEpsilon)) {
    check(epsilon >= 0.f && std::isfinite(epsilon), kRMSNorm, "attribute 'epsilon' must be finite and >= 0");
  }
  void Compute(Ort::KernelContext& ctx) {
    const InputView x = get_input<contract::RMSNorm>(ctx, 0);
    const InputView scale = get_input<contract::RMSNorm>(ctx, 1);
    const int64_t rows = rms_norm_check(x.shape, scale.shape);
    float* y = get_output<float>(ctx, 0, x.shape);
    rms_norm(x.as<float>(), scale.as<float>(), y, rows, x.shape.back(), epsilon, OrtParallel(ctx));
  }
};

// Name, input and output types: ops/contract.py (via the generated op_contract.h).
struct RMSNormOp : OrtOp<RMSNormOp, RMSNormKernel, contract::RMSNorm> {};
}  // namespace

const OrtCustomOp* rms_norm_op() {
  static const RMSNormOp op;
  return &op;
}

}  // namespace vampnet
