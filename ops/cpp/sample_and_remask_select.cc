// SampleAndRemask, selection: typical, top-k and top-p filtering of one row, and the re-mask cut-off.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "sample_and_remask_internal.h"

namespace vampnet {
namespace sampling {

namespace {

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

}  // namespace

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
  // At least min_tokens tokens (any value <= 1: no minimum; written so that INT64_MIN cannot overflow).
  const int64_t threshold_pos = std::max<int64_t>(last_ind, min_tokens > 1 ? min_tokens - 1 : 0);
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

}  // namespace sampling

// Positions with confidence strictly below the k-th smallest (0-based) are re-masked.
float remask_cutoff(const float* confidence, int64_t n, int64_t k, float* scratch) {
  using sampling::kInf;
  if (k <= 0 || n == 0) return -kInf;  // nothing is strictly below the smallest value
  if (k >= n) return kInf;
  std::copy(confidence, confidence + n, scratch);
  std::nth_element(scratch, scratch + k, scratch + n);
  return scratch[k];
}

}  // namespace vampnet
