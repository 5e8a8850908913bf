#include "dynamic_quantize_im2col.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ort_op.h"

namespace vampnet {

void dynamic_quantize_im2col_check_attributes(int64_t kernel_size, int64_t dilation, int64_t padding) {
  check(kernel_size >= 1, kDynamicQuantizeIm2Col,
        "attribute 'kernel_size' must be >= 1, got " + std::to_string(kernel_size));
  check(dilation >= 1, kDynamicQuantizeIm2Col, "attribute 'dilation' must be >= 1, got " + std::to_string(dilation));
  check(padding >= 0, kDynamicQuantizeIm2Col, "attribute 'padding' must be >= 0, got " + std::to_string(padding));
  constexpr int64_t kLimit = int64_t{1} << 24;  // far beyond any conv; keeps the index arithmetic below exact
  check(kernel_size <= kLimit && dilation <= kLimit && padding <= kLimit, kDynamicQuantizeIm2Col,
        "attributes kernel_size, dilation and padding must each be <= 2^24");
}

Im2ColDims dynamic_quantize_im2col_check(const Shape& x, int64_t kernel_size, int64_t dilation, int64_t padding) {
  dynamic_quantize_im2col_check_attributes(kernel_size, dilation, padding);
  check_rank(kDynamicQuantizeIm2Col, "X", x, 3);
  check_nonempty(kDynamicQuantizeIm2Col, "X", x);
  Im2ColDims d{x[0], x[2], x[1], kernel_size, dilation, padding, 0};  // X is [B, L, C]
  d.out_length = d.length + 2 * padding - dilation * (kernel_size - 1);
  check(d.out_length >= 1, kDynamicQuantizeIm2Col,
        "input 'X' is too short for the conv window: L (" + std::to_string(d.length) + ") + 2 * padding (" +
            std::to_string(padding) + ") - dilation (" + std::to_string(dilation) + ") * (kernel_size (" +
            std::to_string(kernel_size) + ") - 1) must be >= 1; got shape " + shape_str(x) + " ([B, L, C])");
  // Y has B * L_out * k * C bytes; refuse sizes whose byte count would not fit in int64.
  const double bytes = static_cast<double>(d.batch) * static_cast<double>(d.out_length) *
                       static_cast<double>(kernel_size) * static_cast<double>(d.channels);
  check(bytes < 4.0e18, kDynamicQuantizeIm2Col, "output 'Y' would be too large (" + shape_str(x) + ")");
  return d;
}

int64_t dynamic_quantize_im2col_scratch_bytes(const Im2ColDims& d) {
  return d.kernel_size == 1 && d.padding == 0 ? 0 : d.batch * (d.length + 2 * d.padding) * d.channels;
}

QuantizationParams dynamic_quantization_params(float lo, float hi) {
  // ONNX Runtime's DynamicQuantizeLinear<uint8_t> (CPU): the range includes 0, scale = range / 255 (1 for an
  // all-zero X), zero point = round-half-to-even(clamp(0 - lo / scale, 0, 255)) in float32.
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  const float qmin = 0.0f, qmax = 255.0f;
  const float scale = hi == lo ? 1.0f : (hi - lo) / (qmax - qmin);
  const float initial = qmin - lo / scale;
  const float clamped = std::max(qmin, std::min(qmax, initial));
  return {scale, static_cast<uint8_t>(std::nearbyint(clamped))};
}

namespace {

// One run of `n` values: q = clamp(round-half-even(x / scale) + zp, 0, 255), as MLAS's QuantizeLinear (divide,
// clamp to [-zp, 255 - zp], round to nearest even, add zp). |v| <= 255 after the clamp, so adding and subtracting
// 1.5 * 2^23 rounds to nearest even exactly. A scale that underflowed to 0 gives +-inf (clamped like any value) or
// 0 / 0 = NaN, which MLAS's max/min turn into their second operand, -zp (so q = 0).
VAMPNET_CPU_DISPATCH void quantize_run(const float* x, uint8_t* q, int64_t n, float scale, float zero_point) {
  constexpr float kRound = 12582912.f;
  const float low = -zero_point, high = 255.0f - zero_point;
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] / scale;
    v = v > low ? v : low;  // NaN (0 / 0) -> low
    v = v < high ? v : high;
    const float r = (v + kRound) - kRound;
    q[i] = static_cast<uint8_t>(static_cast<int>(r + zero_point));
  }
}

struct MinMax {
  float lo = std::numeric_limits<float>::infinity();
  float hi = -std::numeric_limits<float>::infinity();
  bool finite = true;
};

// A float's bits as an int32 that orders like the float (for non-NaN values): negative floats have their
// magnitude bits flipped. Integer min/max reductions vectorize (they are associative), float ones do not without
// -ffast-math. The map is its own inverse.
VAMPNET_INLINE int32_t order_key(uint32_t bits) {
  const int32_t i = static_cast<int32_t>(bits);
  return i ^ static_cast<int32_t>(static_cast<uint32_t>(i >> 31) & 0x7fffffffu);
}

VAMPNET_INLINE float from_order_key(int32_t key) {
  const uint32_t bits = static_cast<uint32_t>(order_key(static_cast<uint32_t>(key)));
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// min, max and finiteness of x[0, n) (exact in any order, so the same for any blocking).
VAMPNET_CPU_DISPATCH MinMax min_max(const float* x, int64_t n) {
  int32_t lo = std::numeric_limits<int32_t>::max(), hi = std::numeric_limits<int32_t>::min();
  uint32_t special = 0;  // an all-ones exponent: NaN or an infinity
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    const int32_t key = order_key(bits);
    lo = key < lo ? key : lo;
    hi = key > hi ? key : hi;
    special |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  MinMax m;
  if (n > 0) {
    m.lo = from_order_key(lo);
    m.hi = from_order_key(hi);
  }
  m.finite = special == 0;
  return m;
}

}  // namespace

QuantizationParams dynamic_quantize_im2col(const float* x, uint8_t* y, uint8_t* scratch, const Im2ColDims& d,
                                           const Parallel& par) {
  const int64_t C = d.channels, L = d.length, rows = d.batch * C;
  // 1. min and max over X (order-independent, so the same for any thread count); NaN and infinity refused.
  const int64_t total = rows * L;
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(256, total / 65536));
  std::vector<MinMax> partial(static_cast<size_t>(blocks));
  par.run(static_cast<size_t>(blocks), [&](size_t b) {
    const int64_t begin = total * static_cast<int64_t>(b) / blocks;
    const int64_t end = total * (static_cast<int64_t>(b) + 1) / blocks;
    partial[b] = min_max(x + begin, end - begin);
  });
  MinMax all;
  for (const MinMax& m : partial) {
    all.lo = std::min(all.lo, m.lo);
    all.hi = std::max(all.hi, m.hi);
    all.finite = all.finite && m.finite;
  }
  check(all.finite, kDynamicQuantizeIm2Col, "input 'X' holds NaN or infinite values (no quantization scale exists)");
  const QuantizationParams qp = dynamic_quantization_params(all.lo, all.hi);
  const float zp = static_cast<float>(qp.zero_point);

  // 2. Quantize X [B, L, C] into scratch [B, padding + L + padding, C], the pad rows set to the zero point (a 1x1
  //    conv's im2col is X quantized, so then it goes straight into Y).
  const bool identity = d.kernel_size == 1 && d.padding == 0;
  const int64_t padded_length = L + 2 * d.padding;
  uint8_t* quantized = identity ? y : scratch;
  parallel_blocks(par, d.batch * padded_length, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, C)),
                  [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / padded_length, s = row % padded_length - d.padding;
      uint8_t* out = quantized + row * C;
      if (s < 0 || s >= L) {
        std::memset(out, qp.zero_point, static_cast<size_t>(C));
      } else {
        quantize_run(x + (b * L + s) * C, out, C, qp.scale, zp);
      }
    }
  });
  if (identity) return qp;

  // 3. im2col: output row (b, t) is kernel_size runs of C bytes, padded rows t + j*dilation.
  const int64_t width = d.kernel_size * C;
  parallel_blocks(par, d.batch * d.out_length, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, width)),
                  [&](int64_t begin, int64_t end) {
    for (int64_t bt = begin; bt < end; ++bt) {
      const int64_t b = bt / d.out_length, t = bt % d.out_length;
      uint8_t* row = y + bt * width;
      const uint8_t* source = quantized + (b * padded_length + t) * C;
      for (int64_t j = 0; j < d.kernel_size; ++j) {
        std::memcpy(row + j * C, source + j * d.dilation * C, static_cast<size_t>(C));
      }
    }
  });
  return qp;
}

namespace {

using Contract = contract::DynamicQuantizeIm2Col;

struct DynamicQuantizeIm2ColKernel : OrtKernel<DynamicQuantizeIm2ColKernel> {
  int64_t kernel_size, dilation, padding;
  DynamicQuantizeIm2ColKernel(const OrtApi& api, const OrtKernelInfo* info)
      : kernel_size(attr_int(api, info, kDynamicQuantizeIm2Col, "kernel_size", Contract::kKernelSize)),
        dilation(attr_int(api, info, kDynamicQuantizeIm2Col, "dilation", Contract::kDilation)),
        padding(attr_int(api, info, kDynamicQuantizeIm2Col, "padding", Contract::kPadding)) {
    dynamic_quantize_im2col_check_attributes(kernel_size, dilation, padding);
  }
  void Compute(Ort::KernelContext& ctx) {
    const InputView x = get_input<Contract>(ctx, 0);
    const Im2ColDims d = dynamic_quantize_im2col_check(x.shape, kernel_size, dilation, padding);
    uint8_t* y = get_output<uint8_t>(ctx, 0, {d.batch, d.out_length, d.kernel_size * d.channels});
    OrtWorkspace scratch(ctx, static_cast<size_t>(dynamic_quantize_im2col_scratch_bytes(d)), kDynamicQuantizeIm2Col);
    const QuantizationParams qp = dynamic_quantize_im2col(x.as<float>(), y, scratch.as<uint8_t>(), d,
                                                          OrtParallel(ctx));
    *get_output<float>(ctx, 1, {}) = qp.scale;
    *get_output<uint8_t>(ctx, 2, {}) = qp.zero_point;
  }
};

// Name, input and output types: ops/contract.py (via the generated op_contract.h).
struct DynamicQuantizeIm2ColOp : OrtOp<DynamicQuantizeIm2ColOp, DynamicQuantizeIm2ColKernel, Contract> {};

}  // namespace

const OrtCustomOp* dynamic_quantize_im2col_op() {
  static const DynamicQuantizeIm2ColOp op;
  return &op;
}

}  // namespace vampnet
