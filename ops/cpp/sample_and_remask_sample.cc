// SampleAndRemask, sampling: one row of logits -> (token, probability), with the row primitives it is built from
// (fixed lane order, so every ISA clone is deterministic across thread counts).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "fast_math.h"
#include "sample_and_remask_internal.h"

namespace vampnet {
namespace sampling {

namespace {

// exp(x) for x <= ~88: the shared Cephes core (fast_math.h), exactly 0 below -87.3 (so -inf maps to 0).
// Branch-free so the loops below vectorize.
VAMPNET_INLINE float exp_poly(float x) {
  const float xc = std::min(std::max(x, -87.33654f), 88.37626f);
  float n, y;
  cephes_exp_reduced(xc, n, y);
  const int32_t e = static_cast<int32_t>(n) + 127;
  const uint32_t bits = static_cast<uint32_t>(e) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x < -87.33654f ? 0.0f : y * scale;
}

VAMPNET_CPU_DISPATCH float row_max_impl(const float* x, int64_t n) {
  float m[kLanes];
  for (int l = 0; l < kLanes; ++l) m[l] = -kInf;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) m[l] = x[i + l] > m[l] ? x[i + l] : m[l];
  }
  float best = -kInf;
  for (; i < n; ++i) best = x[i] > best ? x[i] : best;
  for (int l = 0; l < kLanes; ++l) best = m[l] > best ? m[l] : best;
  return best;
}

VAMPNET_CPU_DISPATCH bool has_nan_impl(const float* x, int64_t n) {
  int32_t flags[kLanes] = {0};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) flags[l] |= x[i + l] != x[i + l];
  }
  int32_t any = 0;
  for (; i < n; ++i) any |= x[i] != x[i];
  for (int l = 0; l < kLanes; ++l) any |= flags[l];
  return any != 0;
}

// First index holding `value` (which the row contains).
int64_t first_index_of(const float* x, int64_t n, float value) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    int32_t hit = 0;
    for (int l = 0; l < kLanes; ++l) hit |= x[i + l] == value;
    if (hit) break;
  }
  for (; i < n; ++i) {
    if (x[i] == value) return i;
  }
  return 0;
}

// Sum of 16 values as a fixed pairwise tree (vectorizes as a horizontal reduction).
inline float block_sum16(const float* w) {
  float t[8];
  for (int l = 0; l < 8; ++l) t[l] = w[l] + w[l + 8];
  for (int l = 0; l < 4; ++l) t[l] = t[l] + t[l + 4];
  for (int l = 0; l < 2; ++l) t[l] = t[l] + t[l + 2];
  return t[0] + t[1];
}

// w[i] = exp(x[i] / tau - shift) and the sums of consecutive blocks of kBlock weights; returns the total, defined
// as the in-order sum of the block sums (so the inverse-CDF scan below reaches it exactly). NaN in x gives a NaN
// total.
VAMPNET_CPU_DISPATCH float exp_weights_impl(const float* __restrict x, int64_t n, float tau, float shift,
                                            float* __restrict w, float* __restrict block_sums) {
  for (int64_t i = 0; i < n; ++i) w[i] = exp_poly(x[i] / tau - shift);
  const int64_t full = n / kBlock;
  for (int64_t b = 0; b < full; ++b) block_sums[b] = block_sum16(w + b * kBlock);
  float total = 0.f;
  for (int64_t b = 0; b < full; ++b) total += block_sums[b];
  if (full * kBlock < n) {
    float sum = 0.f;
    for (int64_t i = full * kBlock; i < n; ++i) sum += w[i];
    block_sums[full] = sum;
    total += sum;
  }
  return total;
}

// Inverse CDF: the first token whose running weight sum exceeds target (< total), summing whole blocks first.
int64_t inverse_cdf(const float* w, const float* block_sums, int64_t n, float target) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  float cum = 0.f;
  for (int64_t b = 0; b < blocks; ++b) {
    if (!(cum + block_sums[b] > target)) {
      cum += block_sums[b];
      continue;
    }
    const int64_t end = std::min(n, (b + 1) * kBlock);
    int64_t last_positive = -1;
    for (int64_t i = b * kBlock; i < end; ++i) {
      cum += w[i];
      if (w[i] > 0.f) last_positive = i;
      if (cum > target) return i;
    }
    if (last_positive >= 0) return last_positive;  // in-block rounding fell short: the block's last possible token
  }
  for (int64_t i = n - 1; i >= 0; --i) {  // rounding left the total at or below the target
    if (w[i] > 0.f) return i;
  }
  return 0;
}

}  // namespace

float row_max(const float* x, int64_t n) { return row_max_impl(x, n); }
bool has_nan(const float* x, int64_t n) { return has_nan_impl(x, n); }
float exp_weights(const float* x, int64_t n, float tau, float shift, float* w, float* block_sums) {
  return exp_weights_impl(x, n, tau, shift, w, block_sums);
}

StepConfig step_config(const SampleParams& p, int64_t vocab, bool sample) {
  StepConfig cfg;
  cfg.sample = sample && p.temperature > 0.f;
  cfg.typical = p.typical_mass > 0.f && p.typical_mass < 1.f;
  cfg.top_k = p.top_k > 0 && p.top_k < vocab;
  cfg.top_p = p.top_p > 0.f && p.top_p < 1.f;
  cfg.tau = p.temperature > 0.f ? p.temperature : 1.0f;
  return cfg;
}

void throw_row_error(RowError e, const std::string& where) {
  if (e == RowError::kOverflow) {
    throw Error(kSampleAndRemask, "logits / temperature overflows float32 at " + where +
                                      "; use a larger temperature (or <= 0 for argmax)");
  }
  const char* what = e == RowError::kNaN ? "NaN" : e == RowError::kPosInf ? "+inf" : "only -inf values";
  throw Error(kSampleAndRemask, std::string("input 'logits' has ") + what + " at " + where +
                                    "; logits that are sampled must be finite or -inf, at least one finite");
}

RowError sample_row(const float* row, int64_t n, const StepConfig& cfg, const SampleParams& p, float u, Scratch& s,
                    Draw& out) {
  const float raw_max = row_max_impl(row, n);
  if (raw_max == kInf) return RowError::kPosInf;
  if (raw_max == -kInf) return has_nan_impl(row, n) ? RowError::kNaN : RowError::kAllNegInf;
  const float* x = row;
  float max_logit = raw_max;
  if (cfg.typical || cfg.top_k || cfg.top_p) {
    if (has_nan_impl(row, n)) return RowError::kNaN;  // before any selection sees it
    float* f = s.filtered.data();
    std::copy(row, row + n, f);
    if (cfg.typical) typical_filter(f, n, p.typical_mass, p.typical_min_tokens, s);
    if (cfg.top_k) top_k_filter(f, n, p.top_k, s);
    if (cfg.top_p) top_p_filter(f, n, p.top_p, s);
    x = f;
    max_logit = row_max_impl(f, n);
  }
  const float shift = max_logit / cfg.tau;
  if (!std::isfinite(shift)) return RowError::kOverflow;  // logits / temperature overflows float32
  float* w = s.weights.data();
  const float total = exp_weights_impl(x, n, cfg.tau, shift, w, s.block_sums.data());
  if (std::isnan(total)) return RowError::kNaN;
  const int64_t token = cfg.sample ? inverse_cdf(w, s.block_sums.data(), n, u * total) : first_index_of(x, n, max_logit);
  out.token = token;
  out.prob = w[token] / total;
  return RowError::kNone;
}

}  // namespace sampling

using sampling::kInf;

void filter_rows(const float* logits, int64_t rows, int64_t vocab, const SampleParams& params, float* out) {
  using namespace sampling;
  const StepConfig cfg = step_config(params, vocab, false);
  Scratch scratch(vocab);
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = logits + i * vocab;
    float* x = out + i * vocab;
    const float raw_max = row_max_impl(row, vocab);
    const RowError e = has_nan_impl(row, vocab) ? RowError::kNaN
                       : raw_max == kInf        ? RowError::kPosInf
                       : raw_max == -kInf       ? RowError::kAllNegInf
                                                : RowError::kNone;
    if (e != RowError::kNone) throw_row_error(e, "row " + std::to_string(i));
    std::copy(row, row + vocab, x);
    if (cfg.typical) typical_filter(x, vocab, params.typical_mass, params.typical_min_tokens, scratch);
    if (cfg.top_k) top_k_filter(x, vocab, params.top_k, scratch);
    if (cfg.top_p) top_p_filter(x, vocab, params.top_p, scratch);
  }
}

void sample_rows(const float* logits, int64_t rows, int64_t vocab, const SampleParams& params, bool sample,
                 const float* uniforms, int64_t* tokens, float* probs) {
  using namespace sampling;
  const StepConfig cfg = step_config(params, vocab, sample);
  Scratch scratch(vocab);
  for (int64_t i = 0; i < rows; ++i) {
    Draw draw{0, 0.f};
    const RowError e = sample_row(logits + i * vocab, vocab, cfg, params, uniforms[i], scratch, draw);
    if (e != RowError::kNone) throw_row_error(e, "row " + std::to_string(i));
    tokens[i] = draw.token;
    probs[i] = draw.prob;
  }
}

}  // namespace vampnet
