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
constexpr int64_t kMaxN0 = int64_t{1} << 24;

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
  check(p.top_p >= 0.f && p.top_p <= 1.f, op,
        "input 'top_p' must be in [0, 1] (0 or 1: off), got " + std::to_string(p.top_p));
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
    // Any count is meaningful (upstream counts over the whole batch, so N0 may exceed C*T); 2^24 keeps float32(N0)
    // exact.
    check(n0[b] >= 0 && n0[b] <= kMaxN0, op,
          "input 'n0' must be in [0, 2^24], got " + std::to_string(n0[b]) + " for item " + std::to_string(b));
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
// evaluated in double-float arithmetic (the algorithm of SLEEF's 1-ulp cosf). torch's CPU cos is not correctly
// rounded; this reproduces every schedule in golden/sampling.npz bit for bit and 97% of torch's values over all
// (step, S < 200), where the correctly rounded cosine gets 95% (see docs/SAMPLING.md).
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
  // Round x / ln 2 to the nearest integer with the 1.5 * 2^23 trick (branch-free, vectorizes on every ISA).
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
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

// Max of a row in fixed lane order; NaN is ignored (callers detect NaN separately).
__attribute__((target_clones("avx512f", "avx2", "default"))) float row_max(const float* x, int64_t n) {
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

__attribute__((target_clones("avx512f", "avx2", "default"))) bool has_nan(const float* x, int64_t n) {
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

constexpr int64_t kBlock = 16;

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
__attribute__((target_clones("avx512f", "avx2", "default"))) float exp_weights(const float* __restrict x, int64_t n,
                                                                                 float tau, float shift,
                                                                                 float* __restrict w,
                                                                                 float* __restrict block_sums) {
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

// Per-thread scratch of one block of positions.
struct Scratch {
  std::vector<float> filtered, weights, aux, block_sums;
  std::vector<uint64_t> order;
  explicit Scratch(int64_t v)
      : filtered(static_cast<size_t>(v)), weights(static_cast<size_t>(v)), aux(static_cast<size_t>(v)),
        block_sums(static_cast<size_t>((v + kBlock - 1) / kBlock)), order(static_cast<size_t>(v)) {}
};

// Sort keys: (32-bit order key << 32) | token id, so plain integer order is "by key, ties by token id".
inline uint32_t token_of(uint64_t key) { return static_cast<uint32_t>(key); }
inline uint32_t float_bits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  return bits;
}
// Ascending order of non-negative floats (and +inf).
inline uint64_t ascending_key(float nonnegative, int64_t token) {
  return (static_cast<uint64_t>(float_bits(nonnegative + 0.0f)) << 32) | static_cast<uint64_t>(token);
}
// Descending order of any non-NaN float (-0 and +0 compare equal, as floats do).
inline uint64_t descending_key(float v, int64_t token) {
  const uint32_t bits = float_bits(v + 0.0f);
  const uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return (static_cast<uint64_t>(~ascending) << 32) | static_cast<uint64_t>(token);
}

// Selection by a 256-bin histogram of a non-negative rank value (the order is: rank value ascending; exact ties
// and tokens sharing a bin are ordered by `key`, which must be monotone with the rank value). Tokens whose rank
// value is +inf are excluded. Two O(V) passes plus a sort of one or two bins; no data-dependent branching in the
// passes.
constexpr int kBins = 256;

template <typename Key>
struct RankHistogram {
  const float* rank;
  int64_t n;
  Key key;
  float scale = 0.f;
  Scratch* s;

  int bin(float r) const { return std::min(kBins - 1, static_cast<int>(r * scale)); }

  RankHistogram(const float* rank_, int64_t n_, Key key_, Scratch& scratch) : rank(rank_), n(n_), key(key_), s(&scratch) {
    float top = 0.f;
    for (int64_t j = 0; j < n; ++j) top = rank[j] != kInf && rank[j] > top ? rank[j] : top;
    scale = top > 0.f ? static_cast<float>(kBins) / top : 0.f;
    if (!(scale < kInf)) scale = 0.f;  // top is subnormal: one bin
  }

  // The sorted keys of bin b, in s->order; returns their count.
  int64_t bin_keys(int b) const {
    uint64_t* keys = s->order.data();
    int64_t count = 0;
    for (int64_t j = 0; j < n; ++j) {
      if (rank[j] != kInf && bin(rank[j]) == b) keys[count++] = key(j);
    }
    std::sort(keys, keys + count);
    return count;
  }

  // Key of the first token, in order, at which the running sum of weight satisfies `crossed`; UINT64_MAX if none.
  template <typename Crossed>
  uint64_t key_at_mass(const float* weight, Crossed crossed) const {
    float mass[kBins] = {0.f};
    for (int64_t j = 0; j < n; ++j) {
      if (rank[j] != kInf) mass[bin(rank[j])] += weight[j];
    }
    float acc = 0.f;
    for (int b = 0; b < kBins; ++b) {
      if (!crossed(acc + mass[b])) {
        acc += mass[b];
        continue;
      }
      const int64_t count = bin_keys(b);
      const uint64_t* keys = s->order.data();
      for (int64_t q = 0; q < count; ++q) {
        acc += weight[token_of(keys[q])];
        if (crossed(acc)) return keys[q];
      }
    }
    return std::numeric_limits<uint64_t>::max();
  }

  // Number of ranked tokens whose key is <= `limit`.
  int64_t count_up_to(uint64_t limit) const {
    int64_t c = 0;
    for (int64_t j = 0; j < n; ++j) c += rank[j] != kInf && key(j) <= limit;
    return c;
  }

  // Key at 0-based position `pos` in order (pos < number of ranked tokens).
  uint64_t key_at_position(int64_t pos) const {
    int64_t counts[kBins] = {0};
    for (int64_t j = 0; j < n; ++j) {
      if (rank[j] != kInf) ++counts[bin(rank[j])];
    }
    int64_t before = 0;
    for (int b = 0; b < kBins; ++b) {
      if (pos < before + counts[b]) {
        bin_keys(b);
        return s->order[static_cast<size_t>(pos - before)];
      }
      before += counts[b];
    }
    return std::numeric_limits<uint64_t>::max();
  }
};

template <typename Key>
RankHistogram<Key> rank_histogram(const float* rank, int64_t n, Key key, Scratch& s) {
  return RankHistogram<Key>(rank, n, key, s);
}

// Typical filtering (upstream's typical_filter algorithm): in ascending order of |surprisal - entropy| keep tokens
// until their probability mass reaches `mass`, and at least `min_tokens`; every token whose gap equals the last
// kept one's is kept too. x holds no NaN/+inf and at least one finite value.
void typical_filter(float* x, int64_t n, float mass, int64_t min_tokens, Scratch& s) {
  const float m = row_max(x, n);
  float* p = s.weights.data();
  const float total = exp_weights(x, n, 1.0f, m, p, s.block_sums.data());
  const float log_total = std::log(total);
  const float inv_total = 1.0f / total;
  float* gap = s.aux.data();
  float entropy = 0.f;
  for (int64_t j = 0; j < n; ++j) {
    const float logp = (x[j] - m) - log_total;
    p[j] *= inv_total;
    entropy -= x[j] == -kInf ? 0.f : p[j] * logp;  // p log p -> 0 (upstream's nansum)
    gap[j] = logp;
  }
  for (int64_t j = 0; j < n; ++j) gap[j] = x[j] == -kInf ? kInf : std::fabs(-gap[j] - entropy);
  const auto ranked = rank_histogram(gap, n, [gap](int64_t j) { return ascending_key(gap[j], j); }, s);
  constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();
  const uint64_t boundary = ranked.key_at_mass(p, [mass](float cum) { return !(cum < mass); });
  const int64_t count = ranked.count_up_to(kNone);
  // last_ind = number of tokens before the crossing one (all of them when the mass is never reached).
  const int64_t last_ind = boundary == kNone ? count : ranked.count_up_to(boundary) - 1;
  // max(last_ind, min_tokens - 1) without computing min_tokens - 1 when it would overflow (INT64_MIN).
  const int64_t threshold_pos = min_tokens > last_ind ? min_tokens - 1 : last_ind;
  if (threshold_pos >= count) return;  // keeps every token
  const uint64_t threshold_key = threshold_pos == last_ind ? boundary : ranked.key_at_position(threshold_pos);
  const float threshold = gap[token_of(threshold_key)];
  for (int64_t j = 0; j < n; ++j) {
    if (gap[j] > threshold) x[j] = -kInf;
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
  const float m = row_max(x, n);
  float* q = s.weights.data();
  const float inv_total = 1.0f / exp_weights(x, n, 1.0f, m, q, s.block_sums.data());
  float* rank = s.aux.data();
  for (int64_t j = 0; j < n; ++j) {
    q[j] *= inv_total;
    rank[j] = x[j] == -kInf ? kInf : m - x[j];  // ascending rank = descending logit (binning only)
  }
  const auto ranked = rank_histogram(rank, n, [x](int64_t j) { return descending_key(x[j], j); }, s);
  const uint64_t last_kept = ranked.key_at_mass(q, [top_p](float cum) { return cum > top_p; });
  for (int64_t j = 0; j < n; ++j) {  // tokens after the crossing one go (none if it is never crossed)
    if (x[j] != -kInf && descending_key(x[j], j) > last_kept) x[j] = -kInf;
  }
}

enum class RowError : int32_t { kNone = 0, kNaN = 1, kPosInf = 2, kAllNegInf = 3, kOverflow = 4 };

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
  const float raw_max = row_max(row, n);
  if (raw_max == kInf) return RowError::kPosInf;
  if (raw_max == -kInf) return has_nan(row, n) ? RowError::kNaN : RowError::kAllNegInf;
  const float* x = row;
  float max_logit = raw_max;
  if (cfg.typical || cfg.top_k || cfg.top_p) {
    if (has_nan(row, n)) return RowError::kNaN;  // before any selection sees it
    float* f = s.filtered.data();
    std::copy(row, row + n, f);
    if (cfg.typical) typical_filter(f, n, p.typical_mass, p.typical_min_tokens, s);
    if (cfg.top_k) top_k_filter(f, n, p.top_k, s);
    if (cfg.top_p) top_p_filter(f, n, p.top_p, s);
    x = f;
    max_logit = row_max(f, n);
  }
  const float shift = max_logit / cfg.tau;
  if (!std::isfinite(shift)) return RowError::kOverflow;  // logits / temperature overflows float32
  float* w = s.weights.data();
  const float total = exp_weights(x, n, cfg.tau, shift, w, s.block_sums.data());
  if (std::isnan(total)) return RowError::kNaN;
  const int64_t token = cfg.sample ? inverse_cdf(w, s.block_sums.data(), n, u * total) : first_index_of(x, n, max_logit);
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
      const auto e = static_cast<RowError>(errors[static_cast<size_t>(i)]);
      const std::string where = "masked position (item " + std::to_string(b) + ", predicted codebook " +
                                std::to_string(pc) + ", frame " + std::to_string(t) + ")";
      if (e == RowError::kOverflow) {
        throw Error(kSampleAndRemask, "logits / temperature overflows float32 at " + where +
                                          "; use a larger temperature (or <= 0 for argmax)");
      }
      const char* what = e == RowError::kNaN ? "NaN" : e == RowError::kPosInf ? "+inf" : "only -inf values";
      throw Error(kSampleAndRemask, std::string("input 'logits' has ") + what + " at " + where +
                                        "; logits of masked positions must be finite or -inf, at least one finite");
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
  if (e == RowError::kOverflow) {
    throw Error(kSampleAndRemask, "logits / temperature overflows float32 in row " + std::to_string(row));
  }
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
    const float raw_max = row_max(row, vocab);
    if (has_nan(row, vocab)) throw_row_error(RowError::kNaN, i);
    if (raw_max == kInf) throw_row_error(RowError::kPosInf, i);
    if (raw_max == -kInf) throw_row_error(RowError::kAllNegInf, i);
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
  static constexpr std::array kInputTypes{kFloat, kInt64, kInt64, kInt64, kInt64, kInt64, kFloat,
                                          kFloat, kFloat, kFloat, kInt64, kFloat, kInt64, kFloat};
  static constexpr std::array kOutputTypes{kInt64, kInt64};
};

}  // namespace

const OrtCustomOp* sample_and_remask_op() {
  static const SampleAndRemaskOp op;
  return &op;
}

}  // namespace vampnet
