#include "sample_and_remask.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ort_op.h"

namespace vampnet {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int kLanes = 16;

std::string scalar_str(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

}  // namespace

// ---- validation --------------------------------------------------------------------------------------------------

SampleDims sample_and_remask_check_shapes(const Shape& logits, const Shape& codes, const Shape& start_codes,
                                          const Shape& n0, const Shape& uniforms) {
  const std::string op = kSampleAndRemask;
  check_rank(op, "logits", logits, 4);
  check_rank(op, "codes", codes, 3);
  SampleDims d;
  d.batch = logits[0];
  d.predicted = logits[1];
  d.time = logits[2];
  d.vocab = logits[3];
  d.codebooks = codes[1];
  check(d.vocab >= 1, op, "input 'logits' must have a vocabulary dim V >= 1, got shape " + shape_str(logits));
  check(d.vocab < (int64_t{1} << 31), op, "input 'logits' vocabulary dim must be < 2^31");
  check(d.predicted >= 1, op, "input 'logits' must predict P >= 1 codebooks, got shape " + shape_str(logits));
  check_dim(op, "codes", codes, 0, d.batch, "B of 'logits'");
  check_dim(op, "codes", codes, 2, d.time, "T of 'logits'");
  check(d.codebooks >= d.predicted, op,
        "input 'codes' has C = " + std::to_string(d.codebooks) + " codebooks, fewer than the P = " +
            std::to_string(d.predicted) + " predicted codebooks of 'logits'");
  check(start_codes == codes, op,
        "input 'start_codes' must have the shape of 'codes' " + shape_str(codes) + ", got " + shape_str(start_codes));
  check_rank(op, "n0", n0, 1);
  check_dim(op, "n0", n0, 0, d.batch, "B of 'logits'");
  check_rank(op, "uniforms", uniforms, 4);
  check_dim(op, "uniforms", uniforms, 0, 2, "2 (sampling draw, Gumbel noise)");
  check_dim(op, "uniforms", uniforms, 1, d.batch, "B of 'logits'");
  check_dim(op, "uniforms", uniforms, 2, d.predicted, "P of 'logits'");
  check_dim(op, "uniforms", uniforms, 3, d.time, "T of 'logits'");
  return d;
}

void sample_and_remask_check_values(const SampleDims& d, const SampleParams& p, const int64_t* codes,
                                    const int64_t* start_codes, const int64_t* n0, const float* uniforms) {
  const std::string op = kSampleAndRemask;
  check(p.num_steps >= 1, op, "input 'num_steps' must be >= 1, got " + std::to_string(p.num_steps));
  check(p.step >= 0 && p.step < p.num_steps, op,
        "input 'step' must be in [0, num_steps) = [0, " + std::to_string(p.num_steps) + "), got " +
            std::to_string(p.step));
  check(p.num_steps < (int64_t{1} << 24), op, "input 'num_steps' must be < 2^24");
  check(std::isfinite(p.temperature), op,
        "input 'temperature' must be finite (<= 0 means argmax), got " + scalar_str(p.temperature));
  check(std::isfinite(p.mask_temperature) && p.mask_temperature >= 0.f, op,
        "input 'mask_temperature' must be finite and >= 0, got " + scalar_str(p.mask_temperature));
  check(!std::isnan(p.top_p), op, "input 'top_p' is NaN (use <= 0 or >= 1 to turn top-p off)");
  check(!std::isnan(p.typical_mass), op, "input 'typical_mass' is NaN (use <= 0 to turn typical filtering off)");
  check(!std::isnan(p.sample_cutoff), op, "input 'sample_cutoff' is NaN");
  const int64_t n_codes = d.batch * d.codebooks * d.time;
  const int64_t mask = d.vocab;
  for (int64_t i = 0; i < n_codes; ++i) {
    if (codes[i] < 0 || codes[i] > mask) {
      throw Error(op, "input 'codes' holds token " + std::to_string(codes[i]) + " at flat index " +
                          std::to_string(i) + "; tokens must be in [0, V] = [0, " + std::to_string(mask) +
                          "] (V = MASK)");
    }
    if (start_codes[i] < 0 || start_codes[i] > mask) {
      throw Error(op, "input 'start_codes' holds token " + std::to_string(start_codes[i]) + " at flat index " +
                          std::to_string(i) + "; tokens must be in [0, V] = [0, " + std::to_string(mask) + "]");
    }
  }
  for (int64_t b = 0; b < d.batch; ++b) {
    check(n0[b] >= 0 && n0[b] <= d.codebooks * d.time, op,
          "input 'n0' must be in [0, C*T] = [0, " + std::to_string(d.codebooks * d.time) + "], got " +
              std::to_string(n0[b]) + " for item " + std::to_string(b));
  }
  const int64_t n_uniforms = 2 * d.batch * d.predicted * d.time;
  for (int64_t i = 0; i < n_uniforms; ++i) {
    if (!(uniforms[i] > 0.f && uniforms[i] < 1.f)) {
      throw Error(op, "input 'uniforms' must lie strictly inside (0, 1), got " + scalar_str(uniforms[i]) +
                          " at flat index " + std::to_string(i));
    }
  }
}

// ---- schedule ----------------------------------------------------------------------------------------------------

float schedule_r(int64_t step, int64_t num_steps) {
  return static_cast<float>(step + 1) / static_cast<float>(num_steps);
}

namespace {

// Double-float helpers (a value as an unevaluated sum hi + lo of two floats).
struct Float2 {
  float hi, lo;
};
inline Float2 two_sum(float x, float y) {  // exact x + y
  const float s = x + y;
  const float v = s - x;
  return {s, (x - (s - v)) + (y - v)};
}
inline Float2 add2(Float2 x, float y) {
  const float s = x.hi + y;
  const float v = s - x.hi;
  return {s, ((x.hi - (s - v)) + (y - v)) + x.lo};
}
inline Float2 fast_add(float x, float y) {  // |x| >= |y|
  const float s = x + y;
  return {s, (x - s) + y};
}
inline Float2 fast_add(float x, Float2 y) {  // |x| >= |y|
  const float s = x + y.hi;
  return {s, ((x - s) + y.hi) + y.lo};
}
inline Float2 square(Float2 x) {
  const float s = x.hi * x.hi;
  return {s, std::fma(x.hi + x.hi, x.lo, std::fma(x.hi, x.hi, -s))};
}
inline Float2 mul(Float2 x, Float2 y) {
  const float s = x.hi * y.hi;
  return {s, std::fma(x.hi, y.lo, std::fma(x.lo, y.hi, std::fma(x.hi, y.hi, -s)))};
}
inline float mul_to_float(Float2 x, Float2 y) {
  return std::fma(x.hi, y.hi, std::fma(x.lo, y.hi, x.hi * y.lo));
}

}  // namespace

// cos(d) for |d| < 125 in float32 with fused multiply-adds, reduced around the nearest odd multiple of pi/2 and
// evaluated in double-float arithmetic: the algorithm of SLEEF's 1-ulp cosf, which is what torch's CPU cos
// runs. Matching it (not the correctly rounded cosine) is what makes the schedule agree with upstream bit for bit:
// the two differ by one ulp for about 5% of (step, num_steps) pairs, which changes floor(gamma * N0) for some N0.
float schedule_cos(float d) {
  const float dq = std::fma(std::nearbyint(std::fma(d, 0.318309886183790671538f, -0.5f)), 2.0f, 1.0f);
  const int32_t q = static_cast<int32_t>(dq);
  Float2 s = two_sum(d, dq * -1.57073974609375f);      // -pi_a / 2
  s = add2(s, dq * -5.657970905303955078e-05f);         // -pi_b / 2
  s = add2(s, dq * -9.920936294705029468e-10f);         // -pi_c / 2
  const Float2 t = s;
  const Float2 s2 = square(s);
  float u = std::fma(2.6083159809786593541503e-06f, s2.hi, -0.0001981069071916863322258f);
  u = std::fma(u, s2.hi, 0.00833307858556509017944336f);
  const Float2 x = fast_add(1.0f, mul(fast_add(-0.166666597127914428710938f, u * s2.hi), s2));
  const float r = mul_to_float(t, x);
  return (q & 2) == 0 ? -r : r;
}

float schedule_gamma(float r) {
  // cos(r * pi / 2) with every product rounded to float32 as upstream does, clamped to [1e-10, 1].
  const float angle = (r * static_cast<float>(M_PI)) / 2.0f;
  return std::min(std::max(schedule_cos(angle), 1e-10f), 1.0f);
}

int64_t schedule_num_to_mask(int64_t step, int64_t num_steps, int64_t n0, int64_t masked_in_row) {
  const float gamma = schedule_gamma(schedule_r(step, num_steps));
  int64_t k = static_cast<int64_t>(std::floor(gamma * static_cast<float>(n0)));
  if (step != num_steps - 1) k = std::max<int64_t>(1, std::min<int64_t>(masked_in_row - 1, k));
  return k;
}

// ---- per-position sampling ---------------------------------------------------------------------------------------

namespace {

// exp(x) for x <= ~88 by range reduction and a degree-6 polynomial (Cephes expf coefficients, ~1 ulp);
// exactly 0 below -87.3 (so -inf maps to 0). Branch-free so the loops below vectorize.
inline float exp_poly(float x) {
  const float xc = std::min(std::max(x, -87.33654f), 88.37626f);
  const float n = std::floor(xc * 1.44269504088896341f + 0.5f);
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  const float z = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  const int32_t e = static_cast<int32_t>(n) + 127;
  const uint32_t bits = static_cast<uint32_t>(e) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x < -87.33654f ? 0.0f : y * scale;
}

struct RowStats {
  float max = -kInf;
  int64_t nan_count = 0;
};

__attribute__((target_clones("avx512f", "avx2", "default"))) RowStats row_stats(const float* x, int64_t n) {
  float m[kLanes];
  int32_t nans[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    m[l] = -kInf;
    nans[l] = 0;
  }
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float v = x[i + l];
      m[l] = v > m[l] ? v : m[l];
      nans[l] += v != v;
    }
  }
  for (; i < n; ++i) {
    const float v = x[i];
    m[0] = v > m[0] ? v : m[0];
    nans[0] += v != v;
  }
  RowStats s;
  for (int l = 0; l < kLanes; ++l) {
    s.max = m[l] > s.max ? m[l] : s.max;
    s.nan_count += nans[l];
  }
  return s;
}

// w[i] = exp(x[i] * inv_scale ... ) : w[i] = exp(x[i] / tau - shift); returns the sum (fixed lane order).
__attribute__((target_clones("avx512f", "avx2", "default"))) float exp_weights(const float* x, int64_t n, float tau,
                                                                                 float shift, float* w) {
  float acc[kLanes] = {0.f};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float e = exp_poly(x[i + l] / tau - shift);
      w[i + l] = e;
      acc[l] += e;
    }
  }
  for (; i < n; ++i) {
    const float e = exp_poly(x[i] / tau - shift);
    w[i] = e;
    acc[0] += e;
  }
  float total = 0.f;
  for (int l = 0; l < kLanes; ++l) total += acc[l];
  return total;
}

int64_t first_index_of(const float* x, int64_t n, float value) {
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] == value) return i;
  }
  return n - 1;
}

// Per-thread scratch of one block of positions.
struct Scratch {
  std::vector<float> filtered, weights, aux;
  std::vector<int32_t> order;
  explicit Scratch(int64_t v)
      : filtered(static_cast<size_t>(v)), weights(static_cast<size_t>(v)), aux(static_cast<size_t>(v)),
        order(static_cast<size_t>(v)) {}
};

// Sorts order[done, V) incrementally: after the call order[0, next) holds the `next` smallest keys (ties by
// index) in ascending order. `less` compares token indices.
template <typename Less>
void extend_sorted_prefix(int32_t* order, int64_t n, int64_t done, int64_t next, Less less) {
  if (next >= n) {
    std::sort(order + done, order + n, less);
    return;
  }
  std::nth_element(order + done, order + next - 1, order + n, less);
  std::sort(order + done, order + next - 1, less);
}

// Typical filtering (upstream's typical_filter algorithm): keep the tokens whose surprisal is closest to the
// entropy until their probability mass reaches `mass`, and at least `min_tokens` of them; ties at the threshold
// are kept. x holds no NaN/+inf and at least one finite value.
void typical_filter(float* x, int64_t n, float mass, int64_t min_tokens, Scratch& s) {
  const float m = row_stats(x, n).max;
  const float total = exp_weights(x, n, 1.0f, m, s.weights.data());
  const float log_total = std::log(total);
  float* surprise_gap = s.aux.data();
  float entropy = 0.f;
  for (int64_t j = 0; j < n; ++j) {
    if (x[j] == -kInf) continue;  // p log p = 0 (upstream's nansum)
    const float logp = (x[j] - m) - log_total;
    entropy -= std::exp(logp) * logp;
  }
  for (int64_t j = 0; j < n; ++j) {
    const float logp = (x[j] - m) - log_total;
    surprise_gap[j] = x[j] == -kInf ? kInf : std::fabs(-logp - entropy);
    s.weights[j] = std::exp(logp);
  }
  int32_t* order = s.order.data();
  for (int64_t j = 0; j < n; ++j) order[j] = static_cast<int32_t>(j);
  auto less = [&](int32_t a, int32_t b) {
    return surprise_gap[a] < surprise_gap[b] || (surprise_gap[a] == surprise_gap[b] && a < b);
  };
  const int64_t need = std::min<int64_t>(std::max<int64_t>(min_tokens, 1), n);
  int64_t done = 0, last_ind = -1;
  float cum = 0.f;
  while (done < n) {
    const int64_t next = std::min<int64_t>(n, std::max<int64_t>(done * 2, std::max<int64_t>(need, 64)));
    extend_sorted_prefix(order, n, done, next, less);
    for (int64_t q = done; q < next && last_ind < 0; ++q) {
      cum += s.weights[order[q]];
      if (!(cum < mass)) last_ind = q;
    }
    done = next;
    if (last_ind >= 0 && done >= need) break;
  }
  if (last_ind < 0) last_ind = n - 1;
  const int64_t threshold_pos = std::min<int64_t>(std::max<int64_t>(last_ind, min_tokens - 1), n - 1);
  const float threshold = surprise_gap[order[threshold_pos]];
  for (int64_t j = 0; j < n; ++j) {
    if (surprise_gap[j] > threshold) x[j] = -kInf;
  }
}

// Top-k: keep the tokens whose logit is >= the k-th largest (ties kept).
void top_k_filter(float* x, int64_t n, int64_t k, Scratch& s) {
  float* values = s.aux.data();
  std::copy(x, x + n, values);
  std::nth_element(values, values + k - 1, values + n, [](float a, float b) { return a > b; });
  const float threshold = values[k - 1];
  for (int64_t j = 0; j < n; ++j) {
    if (x[j] < threshold) x[j] = -kInf;
  }
}

// Top-p (nucleus, upstream's rule): in descending logit order (ties by index), keep tokens up to and including
// the first whose cumulative softmax probability exceeds top_p.
void top_p_filter(float* x, int64_t n, float top_p, Scratch& s) {
  const float m = row_stats(x, n).max;
  const float total = exp_weights(x, n, 1.0f, m, s.weights.data());
  int32_t* order = s.order.data();
  for (int64_t j = 0; j < n; ++j) order[j] = static_cast<int32_t>(j);
  auto greater = [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  int64_t done = 0, last_kept = -1;
  float cum = 0.f;
  while (done < n && last_kept < 0) {
    const int64_t next = std::min<int64_t>(n, std::max<int64_t>(done * 2, 64));
    extend_sorted_prefix(order, n, done, next, greater);
    for (int64_t q = done; q < next; ++q) {
      cum += s.weights[order[q]] / total;
      if (cum > top_p) {
        last_kept = q;
        break;
      }
    }
    done = next;
  }
  if (last_kept < 0) return;  // the whole distribution fits under top_p
  float* kept = s.aux.data();
  std::fill(kept, kept + n, 0.f);
  for (int64_t q = 0; q <= last_kept; ++q) kept[order[q]] = 1.f;
  for (int64_t j = 0; j < n; ++j) {
    if (kept[j] == 0.f) x[j] = -kInf;
  }
}

enum class RowError : int32_t { kNone = 0, kNaN = 1, kPosInf = 2, kAllNegInf = 3 };

struct Draw {
  int64_t token;
  float prob;
};

struct StepConfig {
  bool sample, typical, top_k, top_p;
  float tau;  // 1 when temperature <= 0
};

RowError sample_row(const float* row, int64_t n, const StepConfig& cfg, const SampleParams& p, float u, Scratch& s,
                    Draw& out) {
  const RowStats raw = row_stats(row, n);
  if (raw.nan_count > 0) return RowError::kNaN;
  if (raw.max == kInf) return RowError::kPosInf;
  if (raw.max == -kInf) return RowError::kAllNegInf;
  const float* x = row;
  float max_logit = raw.max;
  if (cfg.typical || cfg.top_k || cfg.top_p) {
    float* f = s.filtered.data();
    std::copy(row, row + n, f);
    if (cfg.typical) typical_filter(f, n, p.typical_mass, p.typical_min_tokens, s);
    if (cfg.top_k) top_k_filter(f, n, p.top_k, s);
    if (cfg.top_p) top_p_filter(f, n, p.top_p, s);
    x = f;
    max_logit = row_stats(f, n).max;
  }
  const float shift = max_logit / cfg.tau;
  float* w = s.weights.data();
  const float total = exp_weights(x, n, cfg.tau, shift, w);
  int64_t token;
  if (cfg.sample) {
    const float target = u * total;
    float cum = 0.f;
    token = -1;
    for (int64_t j = 0; j < n; ++j) {
      cum += w[j];
      if (cum > target) {
        token = j;
        break;
      }
    }
    if (token < 0) {  // rounding left the running sum at or below the target: take the last possible token
      for (int64_t j = n - 1; j >= 0; --j) {
        if (w[j] > 0.f) {
          token = j;
          break;
        }
      }
    }
  } else {
    token = first_index_of(x, n, max_logit);
  }
  out.token = token;
  out.prob = w[token] / total;
  return RowError::kNone;
}

}  // namespace

void sample_and_remask(const float* logits, const int64_t* codes, const int64_t* start_codes, const int64_t* n0,
                       const float* uniforms, const SampleDims& d, const SampleParams& p, int64_t* next_codes,
                       int64_t* sampled, const Parallel& par) {
  const int64_t B = d.batch, C = d.codebooks, P = d.predicted, T = d.time, V = d.vocab;
  const int64_t Cc = C - P;
  const int64_t positions = B * P * T;
  const int64_t per_item = P * T;

  StepConfig cfg;
  cfg.sample = p.temperature > 0.f &&
               static_cast<double>(p.step) / static_cast<double>(p.num_steps) <= static_cast<double>(p.sample_cutoff);
  cfg.typical = p.typical_mass > 0.f && p.typical_mass < 1.f;
  cfg.top_k = p.top_k > 0 && p.top_k < V;
  cfg.top_p = p.top_p > 0.f && p.top_p < 1.f;
  cfg.tau = p.temperature > 0.f ? p.temperature : 1.0f;
  const float r = schedule_r(p.step, p.num_steps);
  const float noise_scale = p.mask_temperature * (1.0f - r);

  // Conditioning codebooks come from start_codes in both outputs.
  for (int64_t b = 0; b < B; ++b) {
    const int64_t off = b * C * T;
    std::copy(start_codes + off, start_codes + off + Cc * T, sampled + off);
    std::copy(start_codes + off, start_codes + off + Cc * T, next_codes + off);
  }

  // Phase 1: every (item, codebook, frame) position independently -> sampled token and confidence.
  std::vector<float> confidence(static_cast<size_t>(positions));
  std::vector<int32_t> errors(static_cast<size_t>(positions), 0);
  std::atomic<bool> any_error{false};
  const int64_t block = std::max<int64_t>(1, 16384 / V);
  parallel_blocks(par, positions, block, [&](int64_t begin, int64_t end) {
    Scratch scratch(V);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / per_item, pc = (i / T) % P, t = i % T;
      const int64_t code_index = (b * C + Cc + pc) * T + t;
      const int64_t current = codes[code_index];
      if (current != V) {
        sampled[code_index] = current;
        confidence[static_cast<size_t>(i)] = kInf;
        continue;
      }
      Draw draw{0, 0.f};
      const RowError e = sample_row(logits + i * V, V, cfg, p, uniforms[i], scratch, draw);
      if (e != RowError::kNone) {
        errors[static_cast<size_t>(i)] = static_cast<int32_t>(e);
        any_error.store(true, std::memory_order_relaxed);
        sampled[code_index] = 0;
        confidence[static_cast<size_t>(i)] = kInf;
        continue;
      }
      sampled[code_index] = draw.token;
      const float gumbel = -std::log(-std::log(uniforms[positions + i]));
      confidence[static_cast<size_t>(i)] = std::log(draw.prob) + noise_scale * gumbel;
    }
  });
  if (any_error.load()) {
    for (int64_t i = 0; i < positions; ++i) {
      if (errors[static_cast<size_t>(i)] == 0) continue;
      const int64_t b = i / per_item, pc = (i / T) % P, t = i % T;
      const char* what = errors[static_cast<size_t>(i)] == static_cast<int32_t>(RowError::kNaN) ? "NaN"
                         : errors[static_cast<size_t>(i)] == static_cast<int32_t>(RowError::kPosInf)
                             ? "+inf"
                             : "only -inf values (nothing to sample)";
      throw Error(kSampleAndRemask, std::string("input 'logits' has ") + what + " at masked position (item " +
                                        std::to_string(b) + ", predicted codebook " + std::to_string(pc) +
                                        ", frame " + std::to_string(t) +
                                        "); logits of masked positions must be finite or -inf");
    }
  }

  // Phase 2: per item, the re-mask cut-off over its P*T confidences.
  parallel_blocks(par, B, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> sorted(static_cast<size_t>(per_item));
    for (int64_t b = begin; b < end; ++b) {
      int64_t masked_in_row = 0;
      for (int64_t pc = 0; pc < P; ++pc) {
        const int64_t* row = codes + (b * C + Cc + pc) * T;
        for (int64_t t = 0; t < T; ++t) masked_in_row += row[t] == V;
      }
      const int64_t k = schedule_num_to_mask(p.step, p.num_steps, n0[b], masked_in_row);
      const float* conf = confidence.data() + b * per_item;
      const float cutoff = remask_cutoff(conf, per_item, k, sorted.data());
      for (int64_t pc = 0; pc < P; ++pc) {
        const int64_t base = (b * C + Cc + pc) * T;
        for (int64_t t = 0; t < T; ++t) {
          next_codes[base + t] = conf[pc * T + t] < cutoff ? V : sampled[base + t];
        }
      }
    }
  });
}

float remask_cutoff(const float* confidence, int64_t n, int64_t k, float* scratch) {
  if (k <= 0 || n == 0) return -kInf;  // nothing is strictly below the smallest value
  if (k >= n) return kInf;
  std::copy(confidence, confidence + n, scratch);
  std::nth_element(scratch, scratch + k, scratch + n);
  return scratch[k];
}

namespace {
StepConfig row_config(const SampleParams& p, int64_t vocab, bool sample) {
  StepConfig cfg;
  cfg.sample = sample && p.temperature > 0.f;
  cfg.typical = p.typical_mass > 0.f && p.typical_mass < 1.f;
  cfg.top_k = p.top_k > 0 && p.top_k < vocab;
  cfg.top_p = p.top_p > 0.f && p.top_p < 1.f;
  cfg.tau = p.temperature > 0.f ? p.temperature : 1.0f;
  return cfg;
}

void throw_row_error(RowError e, int64_t row) {
  const char* what = e == RowError::kNaN ? "NaN" : e == RowError::kPosInf ? "+inf" : "only -inf values";
  throw Error(kSampleAndRemask, std::string("input 'logits' has ") + what + " in row " + std::to_string(row));
}
}  // namespace

void filter_rows(const float* logits, int64_t rows, int64_t vocab, const SampleParams& params, float* out) {
  const StepConfig cfg = row_config(params, vocab, false);
  Scratch scratch(vocab);
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = logits + i * vocab;
    float* x = out + i * vocab;
    const RowStats raw = row_stats(row, vocab);
    if (raw.nan_count > 0) throw_row_error(RowError::kNaN, i);
    if (raw.max == kInf) throw_row_error(RowError::kPosInf, i);
    if (raw.max == -kInf) throw_row_error(RowError::kAllNegInf, i);
    std::copy(row, row + vocab, x);
    if (cfg.typical) typical_filter(x, vocab, params.typical_mass, params.typical_min_tokens, scratch);
    if (cfg.top_k) top_k_filter(x, vocab, params.top_k, scratch);
    if (cfg.top_p) top_p_filter(x, vocab, params.top_p, scratch);
  }
}

void sample_rows(const float* logits, int64_t rows, int64_t vocab, const SampleParams& params, bool sample,
                 const float* uniforms, int64_t* tokens, float* probs) {
  const StepConfig cfg = row_config(params, vocab, sample);
  Scratch scratch(vocab);
  for (int64_t i = 0; i < rows; ++i) {
    Draw draw{0, 0.f};
    const RowError e = sample_row(logits + i * vocab, vocab, cfg, params, uniforms[i], scratch, draw);
    if (e != RowError::kNone) throw_row_error(e, i);
    tokens[i] = draw.token;
    probs[i] = draw.prob;
  }
}

// ---- ONNX Runtime binding ----------------------------------------------------------------------------------------

namespace {

template <typename T>
T scalar_input(Ort::KernelContext& ctx, size_t index, const char* name) {
  const InputView v = get_input(ctx, index, kSampleAndRemask, name);
  check_scalar(kSampleAndRemask, name, v.shape);
  return v.as<T>()[0];
}

struct SampleAndRemaskKernel : OrtKernel<SampleAndRemaskKernel> {
  SampleAndRemaskKernel(const OrtApi&, const OrtKernelInfo*) {}
  void Compute(Ort::KernelContext& ctx) {
    const InputView logits = get_input(ctx, 0, kSampleAndRemask, "logits");
    const InputView codes = get_input(ctx, 1, kSampleAndRemask, "codes");
    const InputView start_codes = get_input(ctx, 2, kSampleAndRemask, "start_codes");
    const InputView n0 = get_input(ctx, 3, kSampleAndRemask, "n0");
    SampleParams p;
    p.step = scalar_input<int64_t>(ctx, 4, "step");
    p.num_steps = scalar_input<int64_t>(ctx, 5, "num_steps");
    const InputView uniforms = get_input(ctx, 6, kSampleAndRemask, "uniforms");
    p.temperature = scalar_input<float>(ctx, 7, "temperature");
    p.mask_temperature = scalar_input<float>(ctx, 8, "mask_temperature");
    p.top_p = scalar_input<float>(ctx, 9, "top_p");
    p.top_k = scalar_input<int64_t>(ctx, 10, "top_k");
    p.typical_mass = scalar_input<float>(ctx, 11, "typical_mass");
    p.typical_min_tokens = scalar_input<int64_t>(ctx, 12, "typical_min_tokens");
    p.sample_cutoff = scalar_input<float>(ctx, 13, "sample_cutoff");
    const SampleDims d =
        sample_and_remask_check_shapes(logits.shape, codes.shape, start_codes.shape, n0.shape, uniforms.shape);
    sample_and_remask_check_values(d, p, codes.as<int64_t>(), start_codes.as<int64_t>(), n0.as<int64_t>(),
                                   uniforms.as<float>());
    int64_t* next_codes = get_output<int64_t>(ctx, 0, codes.shape);
    int64_t* sampled = get_output<int64_t>(ctx, 1, codes.shape);
    sample_and_remask(logits.as<float>(), codes.as<int64_t>(), start_codes.as<int64_t>(), n0.as<int64_t>(),
                      uniforms.as<float>(), d, p, next_codes, sampled, OrtParallel(ctx));
  }
};

struct SampleAndRemaskOp : OrtOp<SampleAndRemaskOp, SampleAndRemaskKernel> {
  static constexpr const char* kName = kSampleAndRemask;
  static const std::vector<ONNXTensorElementDataType>& InputTypes() {
    constexpr auto F = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    constexpr auto I = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    static const std::vector<ONNXTensorElementDataType> t{F, I, I, I, I, I, F, F, F, F, I, F, I, F};
    return t;
  }
  static const std::vector<ONNXTensorElementDataType>& OutputTypes() {
    static const std::vector<ONNXTensorElementDataType> t{ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64,
                                                          ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64};
    return t;
  }
};

}  // namespace

const OrtCustomOp* sample_and_remask_op() {
  static const SampleAndRemaskOp op;
  return &op;
}

}  // namespace vampnet
