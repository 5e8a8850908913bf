#include "relative_position_attention.h"

#include <cmath>
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "fast_math.h"
#include "ort_op.h"

namespace vampnet {

// ---- validation ----------------------------------------------------------------------------------------------

void relative_position_attention_check_attributes(int64_t num_heads, int64_t num_buckets, int64_t max_distance) {
  const std::string op = kRelativePositionAttention;
  check(num_heads > 0, op, "attribute 'num_heads' must be > 0, got " + std::to_string(num_heads));
  check(num_buckets >= 4 && num_buckets % 2 == 0, op,
        "attribute 'num_buckets' must be even and >= 4 (num_buckets/2 buckets per direction, a quarter of them "
        "exact), got " + std::to_string(num_buckets));
  check(max_distance > num_buckets / 4, op,
        "attribute 'max_distance' must be > num_buckets/4 (= " + std::to_string(num_buckets / 4) +
            ", the last exact distance), got " + std::to_string(max_distance));
}

AttentionDims relative_position_attention_check(const Shape& qkv, const Shape& rel_bias, int64_t num_heads,
                                                int64_t num_buckets, int64_t max_distance) {
  const std::string op = kRelativePositionAttention;
  relative_position_attention_check_attributes(num_heads, num_buckets, max_distance);
  check_rank(op, "qkv", qkv, 3);
  check_rank(op, "rel_bias", rel_bias, 2);
  const int64_t packed = qkv[2];
  check(packed > 0 && packed % 3 == 0, op,
        "input 'qkv' last dim must be 3*D (packed [Q | K | V]) with D > 0, got shape " + shape_str(qkv));
  const int64_t dim = packed / 3;
  check(dim % num_heads == 0, op,
        "D = " + std::to_string(dim) + " (qkv last dim / 3) is not divisible by num_heads = " +
            std::to_string(num_heads));
  check(rel_bias[0] == num_buckets, op,
        "input 'rel_bias' must have shape [num_buckets, num_heads] = [" + std::to_string(num_buckets) + ", " +
            std::to_string(num_heads) + "], got " + shape_str(rel_bias) + " (dim 0 != num_buckets)");
  check(rel_bias[1] == num_heads, op,
        "input 'rel_bias' must have shape [num_buckets, num_heads] = [" + std::to_string(num_buckets) + ", " +
            std::to_string(num_heads) + "], got " + shape_str(rel_bias) + " (one bias column per head)");
  // The bias table holds H * (2T - 1 + block) floats; keep every index computation inside int64.
  check(qkv[1] < (int64_t{1} << 30), op, "sequence length " + std::to_string(qkv[1]) + " is too large");
  return AttentionDims{qkv[0], qkv[1], dim, num_heads, dim / num_heads, num_buckets, max_distance};
}

// ---- buckets -------------------------------------------------------------------------------------------------

int64_t relative_position_bucket(int64_t rel, int64_t num_buckets, int64_t max_distance) {
  const int64_t half = num_buckets / 2;  // buckets per direction
  const int64_t exact = half / 2;        // distances below this get their own bucket
  const int64_t base = rel > 0 ? half : 0;
  const int64_t n = rel < 0 ? -rel : rel;
  if (n < exact) return base + n;
  // Upstream: max_exact + (log(n.float() / max_exact) / math.log(max_distance / max_exact)
  //                        * (num_buckets - max_exact)).long(), all in float32 (the divisor is a Python double).
  const float log_span = static_cast<float>(std::log(static_cast<double>(max_distance) / static_cast<double>(exact)));
  const float ratio = static_cast<float>(n) / static_cast<float>(exact);
  const float scaled = std::log(ratio) / log_span * static_cast<float>(half - exact);
  int64_t bucket = exact + static_cast<int64_t>(scaled);  // scaled is finite and >= 0 here; cast truncates
  if (bucket > half - 1) bucket = half - 1;
  return base + bucket;
}

void relative_position_buckets(int64_t t_query, int64_t t_key, int64_t num_buckets, int64_t max_distance,
                               int64_t* buckets) {
  relative_position_attention_check_attributes(1, num_buckets, max_distance);
  check(t_query >= 0 && t_key >= 0, kRelativePositionAttention, "sequence lengths must be >= 0");
  // Evaluate each offset once, then spread it over the matrix.
  std::vector<int64_t> by_offset(static_cast<size_t>(t_query + t_key > 0 ? t_query + t_key - 1 : 0));
  for (int64_t r = -(t_query - 1); r <= t_key - 1; ++r) {
    by_offset[static_cast<size_t>(r + t_query - 1)] = relative_position_bucket(r, num_buckets, max_distance);
  }
  for (int64_t i = 0; i < t_query; ++i) {
    for (int64_t j = 0; j < t_key; ++j) buckets[i * t_key + j] = by_offset[static_cast<size_t>(j - i + t_query - 1)];
  }
}

// ---- the tiled online-softmax kernel ---------------------------------------------------------------------------

namespace {

constexpr int64_t kLanes = 16;       // floats per vector (one zmm; two ymm / four xmm in the other clones)
constexpr int64_t kBlockQ = 64;      // queries per work unit
constexpr int64_t kBlockK = 64;      // keys per tile (K^T and V tiles: 64 * dh floats each, L1/L2 resident)
constexpr int64_t kRowsMicro = 4;    // query rows per register tile
constexpr int64_t kKeysMicro = 32;   // key granularity of a partial last tile (full tiles use 4x64 score tiles)
constexpr int64_t kColsMicro = 4;    // output vectors per register tile of the P.V micro-kernel (64 floats)

typedef float vf __attribute__((vector_size(64), __may_alias__, aligned(4)));
typedef uint32_t vu __attribute__((vector_size(64), __may_alias__, aligned(4)));
typedef int32_t vi __attribute__((vector_size(64), __may_alias__, aligned(4)));

// Unaligned 16-float loads/stores. Macros, not functions: a function taking or returning a 64-byte vector has a
// different ABI in each target clone (GCC's -Wpsabi).
#define VLOAD(p) (*reinterpret_cast<const vf*>(p))
#define VSTORE(p, v) (*reinterpret_cast<vf*>(p) = (v))

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// exp on 16 lanes for arguments <= 0 (scores minus the running max), NaN-preserving: the shared Cephes core
// (fast_math.h) with 2^n built in the exponent bits, no float->int conversion.
VAMPNET_INLINE void exp16(const vf& x, vf& out) {
  const vf lo = vf{} - 87.0f;  // below -87, e^x < 2^-125: flushed to 0
  const vi small = x < lo;
  const vf xc = small ? lo : x;  // NaN compares false and stays NaN
  typedef float vreg __attribute__((vector_size(64)));  // naturally aligned: locals only, passed by reference
  const vreg xr = xc;
  vreg n, poly;
  cephes_exp_reduced(xr, n, poly);
  const vf t = n + 12582912.0f;  // n in the low mantissa bits of 1.5 * 2^23 (exact)
  const vu exponent = (reinterpret_cast<const vu&>(t) - 0x4B400000u + 127u) << 23;  // (n + 127) << 23
  const vf result = poly * reinterpret_cast<const vf&>(exponent);
  out = small ? vf{} : result;
}

// v with lane l replaced by lane l ^ K (K = 8, 4, 2, 1: swap halves, quarters, ...), for the reduction trees below.
#if VAMPNET_HAS_BUILTIN(__builtin_shufflevector)  // clang, GCC >= 12
#define VAMPNET_XOR_LANES(v, K)                                                                                  \
  __builtin_shufflevector(v, v, 0 ^ K, 1 ^ K, 2 ^ K, 3 ^ K, 4 ^ K, 5 ^ K, 6 ^ K, 7 ^ K, 8 ^ K, 9 ^ K, 10 ^ K, \
                          11 ^ K, 12 ^ K, 13 ^ K, 14 ^ K, 15 ^ K)
#else  // portable: lane by lane (the same values, so the same results)
template <int K>
VAMPNET_INLINE vf xor_lanes(const vf& v) {
  vf o;
  for (int l = 0; l < kLanes; ++l) o[l] = v[l ^ K];
  return o;
}
#define VAMPNET_XOR_LANES(v, K) xor_lanes<K>(v)
#endif

// Horizontal max / sum by halving (a fixed tree: deterministic, and no 16-long dependency chain).
// The max ignores NaN lanes like the scalar `a > b ? a : b` does.
VAMPNET_INLINE float hmax(const vf& v) {
  vf m = v;
  vf o = VAMPNET_XOR_LANES(m, 8);
  m = o > m ? o : m;
  o = VAMPNET_XOR_LANES(m, 4);
  m = o > m ? o : m;
  o = VAMPNET_XOR_LANES(m, 2);
  m = o > m ? o : m;
  o = VAMPNET_XOR_LANES(m, 1);
  m = o > m ? o : m;
  return m[0];
}

VAMPNET_INLINE float hsum(const vf& v) {
  vf t = v + VAMPNET_XOR_LANES(v, 8);
  t = t + VAMPNET_XOR_LANES(t, 4);
  t = t + VAMPNET_XOR_LANES(t, 2);
  t = t + VAMPNET_XOR_LANES(t, 1);
  return t[0];
}

// S[r, c0 .. c0 + 16*NV) = sum_d Q[r, d] * Kt[d, c] + bias for kRowsMicro rows (a kRowsMicro x NV-vector
// register tile); the bias of row r0 + r, column c0 + c is bias0[c - r] (a slice of the per-offset table).
template <int NV>
VAMPNET_INLINE void score_tile(const float* qs, const float* kt, const float* bias0, float* s, int64_t head_dim,
                               int64_t r0, int64_t c0) {
  vf acc[kRowsMicro][NV];
  for (int64_t r = 0; r < kRowsMicro; ++r) {
    for (int v = 0; v < NV; ++v) acc[r][v] = vf{};
  }
  const float* q = qs + r0 * head_dim;
  for (int64_t d = 0; d < head_dim; ++d) {
    vf kv[NV];
    for (int v = 0; v < NV; ++v) kv[v] = VLOAD(kt + d * kBlockK + c0 + v * kLanes);
    for (int64_t r = 0; r < kRowsMicro; ++r) {
      const float qv = q[r * head_dim + d];
      for (int v = 0; v < NV; ++v) acc[r][v] += qv * kv[v];
    }
  }
  for (int64_t r = 0; r < kRowsMicro; ++r) {
    for (int v = 0; v < NV; ++v) {
      VSTORE(s + (r0 + r) * kBlockK + c0 + v * kLanes, acc[r][v] + VLOAD(bias0 - r + v * kLanes));
    }
  }
}

// O[r, d0 .. d0 + 16*NV) += sum_c P[r, c] * V[c, d0 ..] for kRowsMicro rows.
template <int NV>
VAMPNET_INLINE void value_tile(const float* p, const float* vp, float* o, int64_t padded_dim, int64_t keys,
                               int64_t r0, int64_t d0) {
  vf acc[kRowsMicro][NV];
  for (int64_t r = 0; r < kRowsMicro; ++r) {
    for (int v = 0; v < NV; ++v) acc[r][v] = VLOAD(o + (r0 + r) * padded_dim + d0 + v * kLanes);
  }
  for (int64_t c = 0; c < keys; ++c) {
    vf vv[NV];
    for (int v = 0; v < NV; ++v) vv[v] = VLOAD(vp + c * padded_dim + d0 + v * kLanes);
    for (int64_t r = 0; r < kRowsMicro; ++r) {
      const float pv = p[(r0 + r) * kBlockK + c];
      for (int v = 0; v < NV; ++v) acc[r][v] += pv * vv[v];
    }
  }
  for (int64_t r = 0; r < kRowsMicro; ++r) {
    for (int v = 0; v < NV; ++v) VSTORE(o + (r0 + r) * padded_dim + d0 + v * kLanes, acc[r][v]);
  }
}

struct Scratch {
  float* qs;       // [kBlockQ, dh]   Q rows of the block, pre-scaled by 1/sqrt(dh); missing rows are 0
  float* s;        // [kBlockQ, kBlockK] scores, then probabilities
  float* o;        // [kBlockQ, dhp]  unnormalised output accumulators
  float* row_max;  // [kBlockQ]
  float* row_sum;  // [kBlockQ]
};

int64_t scratch_floats(int64_t head_dim) {
  const int64_t padded = round_up(head_dim, kLanes);
  return round_up(kBlockQ * head_dim, kLanes) + kBlockQ * kBlockK + kBlockQ * padded + 2 * kBlockQ + kLanes;
}

Scratch carve(float* buffer, int64_t head_dim) {
  const int64_t padded = round_up(head_dim, kLanes);
  float* p = buffer;
  // Align the start to 64 bytes; every piece below is a multiple of 16 floats long.
  const uintptr_t misalign = reinterpret_cast<uintptr_t>(p) % 64;
  if (misalign) p += (64 - misalign) / sizeof(float);
  Scratch s{};
  s.qs = p;
  p += round_up(kBlockQ * head_dim, kLanes);
  s.s = p;
  p += kBlockQ * kBlockK;
  s.o = p;
  p += kBlockQ * padded;
  s.row_max = p;
  s.row_sum = p + kBlockQ;
  return s;
}

// Floats of one packed key tile: K^T [dh, kBlockK] followed by V [kBlockK, dhp].
int64_t kv_tile_floats(int64_t head_dim) { return head_dim * kBlockK + kBlockK * round_up(head_dim, kLanes); }

// Packs keys [kb * kBlockK, +kBlockK) of head h, batch item b: K transposed, V with its rows padded to a vector
// multiple. Padding (missing keys, extra columns) is 0, so padded lanes never carry NaN garbage.
void pack_kv_tile(const float* qkv, const AttentionDims& d, int64_t b, int64_t h, int64_t kb, float* tile) {
  const int64_t T = d.time, D = d.dim, dh = d.head_dim, dhp = round_up(dh, kLanes);
  const int64_t k0 = kb * kBlockK, nk = std::min(kBlockK, T - k0);
  float* kt = tile;
  float* vp = tile + dh * kBlockK;
  for (int64_t c = 0; c < kBlockK; ++c) {
    float* vdst = vp + c * dhp;
    if (c < nk) {
      const float* krow = qkv + (b * T + k0 + c) * 3 * D + D + h * dh;
      const float* vrow = krow + D;
      for (int64_t e = 0; e < dh; ++e) kt[e * kBlockK + c] = krow[e];
      std::memcpy(vdst, vrow, sizeof(float) * static_cast<size_t>(dh));
      for (int64_t e = dh; e < dhp; ++e) vdst[e] = 0.0f;
    } else {
      for (int64_t e = 0; e < dh; ++e) kt[e * kBlockK + c] = 0.0f;
      for (int64_t e = 0; e < dhp; ++e) vdst[e] = 0.0f;
    }
  }
}

// One work unit: queries [q0, q0 + nq) of head h in batch item b, over every key.
// bias_row: the head's per-offset bias, bias_row[(j - i) + T - 1], with kBlockQ zeros before and kBlockK after.
// packed_kv: the head's key tiles (pack_kv_tile), one after another.
VAMPNET_CPU_DISPATCH
void attend_query_block(const float* qkv, const float* bias_row, const float* packed_kv, float* out,
                        const AttentionDims& d, int64_t b, int64_t h, int64_t q0, const Scratch& w) {
  const int64_t T = d.time, D = d.dim, dh = d.head_dim, dhp = round_up(dh, kLanes);
  const int64_t stride = 3 * D;
  const int64_t nq = std::min(kBlockQ, T - q0);
  const int64_t nq_tiles = round_up(nq, kRowsMicro);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const float* base = qkv + b * T * stride;

  for (int64_t r = 0; r < nq_tiles; ++r) {
    float* dst = w.qs + r * dh;
    if (r < nq) {
      const float* src = base + (q0 + r) * stride + h * dh;
      for (int64_t c = 0; c < dh; ++c) dst[c] = src[c] * scale;
    } else {
      std::memset(dst, 0, sizeof(float) * static_cast<size_t>(dh));
    }
  }
  std::memset(w.o, 0, sizeof(float) * static_cast<size_t>(kBlockQ * dhp));
  for (int64_t r = 0; r < kBlockQ; ++r) {
    w.row_max[r] = neg_inf;
    w.row_sum[r] = 0.0f;
  }
  vf lane_index;
  for (int64_t l = 0; l < kLanes; ++l) lane_index[l] = static_cast<float>(l);

  for (int64_t k0 = 0; k0 < T; k0 += kBlockK) {
    const int64_t nk = std::min(kBlockK, T - k0);
    const int64_t nk_tiles = round_up(nk, kKeysMicro);
    const float* kt = packed_kv + (k0 / kBlockK) * kv_tile_floats(dh);
    const float* vp = kt + dh * kBlockK;
    // Scores.
    for (int64_t r0 = 0; r0 < nq_tiles; r0 += kRowsMicro) {
      const float* bias0 = bias_row + (T - 1) - (q0 + r0) + k0;
      if (nk_tiles == kBlockK) {
        score_tile<kBlockK / kLanes>(w.qs, kt, bias0, w.s, dh, r0, 0);
      } else {
        for (int64_t c0 = 0; c0 < nk_tiles; c0 += kKeysMicro) {
          score_tile<kKeysMicro / kLanes>(w.qs, kt, bias0 + c0, w.s, dh, r0, c0);
        }
      }
    }
    // Online softmax update, rescale of the accumulators.
    for (int64_t r = 0; r < nq_tiles; ++r) {
      float* srow = w.s + r * kBlockK;
      if (r >= nq) {  // padding rows: zero probabilities
        for (int64_t c = 0; c < nk_tiles; c += kLanes) VSTORE(srow + c, vf{});
        continue;
      }
      vf vmax = vf{} + neg_inf;
      for (int64_t c = 0; c < nk_tiles; c += kLanes) {
        vf sv = VLOAD(srow + c);
        if (c + kLanes > nk) {  // the partial last tile: keys past T get -inf (probability 0)
          const vf valid_lane = lane_index + static_cast<float>(c);
          const vf padding = vf{} + neg_inf;
          sv = valid_lane < static_cast<float>(nk) ? sv : padding;
          VSTORE(srow + c, sv);
        }
        vmax = sv > vmax ? sv : vmax;
      }
      const float old_max = w.row_max[r];
      const float block_max = hmax(vmax);
      const float new_max = block_max > old_max ? block_max : old_max;
      // A row whose scores so far are all -inf keeps max -inf; subtract 0 instead so exp gives 0, not NaN.
      const float shift = new_max == neg_inf ? 0.0f : new_max;
      const float alpha = old_max == new_max ? 1.0f : old_max == neg_inf ? 0.0f : std::exp(old_max - shift);
      vf vsum{};
      for (int64_t c = 0; c < nk_tiles; c += kLanes) {
        vf prob;
        exp16(VLOAD(srow + c) - shift, prob);
        VSTORE(srow + c, prob);
        vsum += prob;
      }
      const float block_sum = hsum(vsum);
      w.row_sum[r] = w.row_sum[r] * alpha + block_sum;
      w.row_max[r] = new_max;
      if (alpha != 1.0f) {
        float* orow = w.o + r * dhp;
        for (int64_t e = 0; e < dhp; e += kLanes) VSTORE(orow + e, VLOAD(orow + e) * alpha);
      }
    }
    // O += P . V
    for (int64_t r0 = 0; r0 < nq_tiles; r0 += kRowsMicro) {
      int64_t d0 = 0;
      for (; d0 + kColsMicro * kLanes <= dhp; d0 += kColsMicro * kLanes) {
        value_tile<4>(w.s, vp, w.o, dhp, nk, r0, d0);
      }
      switch ((dhp - d0) / kLanes) {
        case 3: value_tile<3>(w.s, vp, w.o, dhp, nk, r0, d0); break;
        case 2: value_tile<2>(w.s, vp, w.o, dhp, nk, r0, d0); break;
        case 1: value_tile<1>(w.s, vp, w.o, dhp, nk, r0, d0); break;
        default: break;
      }
    }
  }
  for (int64_t r = 0; r < nq; ++r) {
    const float inv = 1.0f / w.row_sum[r];  // 0 only if every probability underflowed: impossible (max gives 1)
    float* dst = out + (b * T + q0 + r) * D + h * dh;
    const float* src = w.o + r * dhp;
    for (int64_t e = 0; e < dh; ++e) dst[e] = src[e] * inv;
  }
}

}  // namespace

int64_t attention_scratch_floats(int64_t head_dim) { return scratch_floats(head_dim); }

namespace {
int64_t bias_row_floats(int64_t time) { return kBlockQ + (2 * time - 1) + kBlockK; }
int64_t packed_head_floats(const AttentionDims& d) {
  return (d.time + kBlockK - 1) / kBlockK * kv_tile_floats(d.head_dim);
}
}  // namespace

int64_t relative_position_attention_workspace_floats(const AttentionDims& d) {
  if (d.batch == 0 || d.time == 0) return 0;
  return d.heads * bias_row_floats(d.time) + d.batch * d.heads * packed_head_floats(d);
}

void relative_position_attention(const float* qkv, const float* rel_bias, float* out, const AttentionDims& d,
                                 float* workspace, const Parallel& par) {
  const int64_t T = d.time, H = d.heads;
  if (d.batch == 0 || T == 0) return;
  // Per-offset bias: table[h, kBlockQ + (j - i) + T - 1] = rel_bias[bucket(j - i), h]; each head's row has
  // kBlockQ zeros in front (read by the padding rows of a partial query block) and kBlockK behind (padding keys).
  const int64_t offsets = 2 * T - 1, row = bias_row_floats(T);
  float* table = workspace;
  std::fill(table, table + H * row, 0.0f);
  for (int64_t r = 0; r < offsets; ++r) {
    const int64_t bucket = relative_position_bucket(r - (T - 1), d.num_buckets, d.max_distance);
    for (int64_t h = 0; h < H; ++h) table[h * row + kBlockQ + r] = rel_bias[bucket * H + h];
  }
  // K^T / V tiles of every (batch item, head), packed once and shared by all query blocks (pack_kv_tile writes
  // every float, padding included).
  const int64_t key_blocks = (T + kBlockK - 1) / kBlockK, tile = kv_tile_floats(d.head_dim);
  const int64_t head_floats = packed_head_floats(d);
  float* packed = workspace + H * row;
  // Small problems run on the calling thread: a block gets at least ~2 MFLOP of work (a size-only rule, so the
  // split never depends on the thread count), since waking the pool costs more than tiny blocks save.
  const int64_t unit_flops = 4 * kBlockQ * T * d.head_dim;
  const int64_t min_units = std::max<int64_t>(1, (int64_t{1} << 21) / unit_flops);
  parallel_blocks(par, d.batch * H * key_blocks, 4 * min_units, [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) {
      const int64_t kb = u % key_blocks, bh = u / key_blocks;
      pack_kv_tile(qkv, d, bh / H, bh % H, kb, packed + u * tile);
    }
  });
  const int64_t query_blocks = (T + kBlockQ - 1) / kBlockQ;
  const int64_t units = d.batch * H * query_blocks;
  parallel_blocks(par, units, min_units, [&](int64_t begin, int64_t end) {
    // Uninitialised on purpose: attend_query_block writes every scratch float before reading it.
    std::unique_ptr<float[]> buffer(new float[static_cast<size_t>(scratch_floats(d.head_dim))]);
    const Scratch w = carve(buffer.get(), d.head_dim);
    for (int64_t u = begin; u < end; ++u) {
      const int64_t qb = u % query_blocks, bh = u / query_blocks;
      const int64_t h = bh % H, b = bh / H;
      attend_query_block(qkv, table + h * row + kBlockQ, packed + bh * head_floats, out, d, b, h, qb * kBlockQ, w);
    }
  });
}

void relative_position_attention(const float* qkv, const float* rel_bias, float* out, const AttentionDims& d,
                                 const Parallel& par) {
  std::unique_ptr<float[]> workspace(new float[static_cast<size_t>(relative_position_attention_workspace_floats(d))]);
  relative_position_attention(qkv, rel_bias, out, d, workspace.get(), par);
}

// ---- ONNX Runtime binding ----------------------------------------------------------------------------------

namespace {

struct RelativePositionAttentionKernel : OrtKernel<RelativePositionAttentionKernel> {
  int64_t num_heads, num_buckets, max_distance;
  RelativePositionAttentionKernel(const OrtApi& api, const OrtKernelInfo* info)
      : num_heads(attr_int(api, info, kRelativePositionAttention, "num_heads", std::numeric_limits<int64_t>::min())),
        num_buckets(attr_int(api, info, kRelativePositionAttention, "num_buckets", contract::RelativePositionAttention::kNumBuckets)),
        max_distance(attr_int(api, info, kRelativePositionAttention, "max_distance", contract::RelativePositionAttention::kMaxDistance)) {
    check(num_heads != std::numeric_limits<int64_t>::min(), kRelativePositionAttention,
          "attribute 'num_heads' is required");
    relative_position_attention_check_attributes(num_heads, num_buckets, max_distance);
  }
  void Compute(Ort::KernelContext& ctx) {
    const InputView qkv = get_input<contract::RelativePositionAttention>(ctx, 0);
    const InputView bias = get_input<contract::RelativePositionAttention>(ctx, 1);
    const AttentionDims d =
        relative_position_attention_check(qkv.shape, bias.shape, num_heads, num_buckets, max_distance);
    float* out = get_output<float>(ctx, 0, {d.batch, d.time, d.dim});
    // The workspace comes from the session's CPU allocator (an arena by default), so repeated runs reuse it
    // instead of page-faulting fresh memory every call.
    OrtWorkspace workspace(ctx, static_cast<size_t>(relative_position_attention_workspace_floats(d)) * sizeof(float),
                           kRelativePositionAttention);
    relative_position_attention(qkv.as<float>(), bias.as<float>(), out, d, workspace.as<float>(), OrtParallel(ctx));
  }
};

// Name, input and output types: ops/contract.py (via the generated op_contract.h).
struct RelativePositionAttentionOp : OrtOp<RelativePositionAttentionOp, RelativePositionAttentionKernel, contract::RelativePositionAttention> {};

}  // namespace

const OrtCustomOp* relative_position_attention_op() {
  static const RelativePositionAttentionOp op;
  return &op;
}

}  // namespace vampnet
