#include "snake.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ort_op.h"

namespace vampnet {

void snake_check_attributes(int64_t channels_last) {
  check(channels_last == 0 || channels_last == 1, kSnake,
        "attribute 'channels_last' must be 0 or 1, got " + std::to_string(channels_last));
}

SnakeDims snake_check(const Shape& x, const Shape& alpha, bool channels_last) {
  check_rank(kSnake, "X", x, 3);
  const int64_t channels = channels_last ? x[2] : x[1];
  const char* layout = channels_last ? "[1, 1, C] or [C]" : "[1, C, 1] or [C]";
  const char* where = channels_last ? "the channel dim of X (channels_last: X is [B, L, C])" : "the channel dim of X";
  if (alpha.size() == 1) {
    check_dim(kSnake, "alpha", alpha, 0, channels, where);
  } else if (alpha.size() == 3) {
    const bool ok = channels_last ? (alpha[0] == 1 && alpha[1] == 1 && alpha[2] == channels)
                                  : (alpha[0] == 1 && alpha[2] == 1 && alpha[1] == channels);
    check(ok, kSnake, std::string("input 'alpha' must have shape ") + layout + " with C = " +
                          std::to_string(channels) + " (" + where + "), got " + shape_str(alpha));
  } else {
    throw Error(kSnake, std::string("input 'alpha' must have shape ") + layout + ", got " + shape_str(alpha));
  }
  if (channels_last) return {x[0], channels, x[1], true};
  return {x[0], channels, x[2], false};
}

namespace {

// |alpha * x| above this goes through std::sin (the fast reduction keeps ~1e-7 accuracy below it).
constexpr float kFastLimit = 65536.f;

// v + sin^2(a * v) * inv. sin^2 has period pi, so t = a * v is reduced by k * pi (three-part Cody-Waite constant)
// to r in [-pi/2, pi/2] and sin(r) is an odd polynomial to r^13 (truncation < 1e-9). Sets `large` when |t| exceeds
// kFastLimit (the caller then redoes the row exactly). Inlined into each dispatched clone of its callers.
VAMPNET_INLINE float snake_fast(float v, float a, float inv, int& large) {
  constexpr float kInvPi = 0.318309886183790671538f;
  constexpr float kPi1 = 3.140625f, kPi2 = 9.67502593994140625e-4f, kPi3 = 1.509957990978376432e-7f;
  constexpr float kRound = 12582912.f;  // 1.5 * 2^23: adding and subtracting rounds to the nearest integer
  constexpr float c3 = -1.f / 6.f, c5 = 1.f / 120.f, c7 = -1.f / 5040.f, c9 = 1.f / 362880.f,
                  c11 = -1.f / 39916800.f, c13 = 1.f / 6227020800.f;
  const float t = a * v;
  large |= static_cast<int>(std::fabs(t) > kFastLimit);
  const float k = (t * kInvPi + kRound) - kRound;
  const float r = ((t - k * kPi1) - k * kPi2) - k * kPi3;
  const float r2 = r * r;
  const float p = c3 + r2 * (c5 + r2 * (c7 + r2 * (c9 + r2 * (c11 + r2 * c13))));
  const float s = r + r * r2 * p;
  return v + s * s * inv;
}

// One channels-first row (one alpha). Returns false when some |alpha * x| exceeded kFastLimit.
VAMPNET_CPU_DISPATCH bool snake_row(const float* x, float* y, int64_t n, float a, float inv) {
  int large = 0;
  for (int64_t i = 0; i < n; ++i) y[i] = snake_fast(x[i], a, inv, large);
  return large == 0;
}

void snake_row_exact(const float* x, float* y, int64_t n, float a, float inv) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = std::sin(a * x[i]);
    y[i] = x[i] + s * s * inv;
  }
}

// One channels-last row: element c has its own alpha[c] and inv[c].
VAMPNET_CPU_DISPATCH bool snake_row_channels_last(const float* x, float* y, int64_t n, const float* alpha,
                                                  const float* inv) {
  int large = 0;
  for (int64_t i = 0; i < n; ++i) y[i] = snake_fast(x[i], alpha[i], inv[i], large);
  return large == 0;
}

}  // namespace

void snake(const float* x, const float* alpha, float* y, const SnakeDims& d, const Parallel& par) {
  if (d.channels_last) {
    // Rows of C channels, each element with its own alpha; a row with a large argument is redone exactly.
    std::vector<float> inv(static_cast<size_t>(d.channels));
    for (int64_t c = 0; c < d.channels; ++c) inv[c] = 1.0f / (alpha[c] + 1e-9f);
    const int64_t rows = d.batch * d.length;
    const int64_t rows_per_block = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, d.channels));
    parallel_blocks(par, rows, rows_per_block, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* xr = x + r * d.channels;
        float* yr = y + r * d.channels;
        if (!snake_row_channels_last(xr, yr, d.channels, alpha, inv.data())) {
          for (int64_t c = 0; c < d.channels; ++c) snake_row_exact(xr + c, yr + c, 1, alpha[c], inv[c]);
        }
      }
    });
    return;
  }
  const int64_t rows = d.batch * d.channels;
  const int64_t rows_per_block = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, d.length));
  parallel_blocks(par, rows, rows_per_block, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float a = alpha[r % d.channels];
      const float inv = 1.0f / (a + 1e-9f);
      const float* xr = x + r * d.length;
      float* yr = y + r * d.length;
      if (!snake_row(xr, yr, d.length, a, inv)) snake_row_exact(xr, yr, d.length, a, inv);
    }
  });
}

namespace {
struct SnakeKernel : OrtKernel<SnakeKernel> {
  int64_t channels_last;
  SnakeKernel(const OrtApi& api, const OrtKernelInfo* info)
      : channels_last(attr_int(api, info, kSnake, "channels_last", contract::Snake::kChannelsLast)) {
    snake_check_attributes(channels_last);
  }
  void Compute(Ort::KernelContext& ctx) {
    const InputView x = get_input<contract::Snake>(ctx, 0);
    const InputView alpha = get_input<contract::Snake>(ctx, 1);
    const SnakeDims d = snake_check(x.shape, alpha.shape, channels_last == 1);
    float* y = get_output<float>(ctx, 0, x.shape);
    snake(x.as<float>(), alpha.as<float>(), y, d, OrtParallel(ctx));
  }
};

// Name, input and output types: ops/contract.py (via the generated op_contract.h).
struct SnakeOp : OrtOp<SnakeOp, SnakeKernel, contract::Snake> {};
}  // namespace

const OrtCustomOp* snake_op() {
  static const SnakeOp op;
  return &op;
}

}  // namespace vampnet
