#include "relative_position_attention_int8.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "fast_math.h"
#include "ort_op.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define VAMPNET_ATTN_INT8_X86 1
#else
#define VAMPNET_ATTN_INT8_X86 0
#endif

namespace vampnet {

AttentionDims relative_position_attention_int8_check(const Shape& qkv, const Shape& rel_bias, int64_t num_heads,
                                                     int64_t num_buckets, int64_t max_distance) {
  AttentionDims d{};
  try {
    d = relative_position_attention_check(qkv, rel_bias, num_heads, num_buckets, max_distance);
  } catch (const Error& e) {  // the same checks; name this op in the message
    const std::string text = e.what(), prefix = std::string(kRelativePositionAttention) + ": ";
    throw Error(kRelativePositionAttentionInt8, text.rfind(prefix, 0) == 0 ? text.substr(prefix.size()) : text);
  }
  check(d.time <= 65536, kRelativePositionAttentionInt8,
        "sequence length " + std::to_string(d.time) + " exceeds 65536 (the int32 P.V sums would overflow)");
  check(d.head_dim <= 1024, kRelativePositionAttentionInt8,
        "head dim " + std::to_string(d.head_dim) + " exceeds 1024 (the exact float32 sums of the portable path)");
  return d;
}

namespace {

constexpr int64_t kBlockQ = 32;  // query rows per work unit
constexpr int64_t kTileK = 16;   // keys per packed K tile (one 512-bit vector of int32 scores)

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// 16-lane GCC/clang vectors (AVX-512 in the x86-64-v4 clone, two or four registers in the others), unaligned.
typedef float vf __attribute__((vector_size(64), __may_alias__, aligned(4)));
typedef int32_t vi __attribute__((vector_size(64), __may_alias__, aligned(4)));
typedef uint32_t vu __attribute__((vector_size(64), __may_alias__, aligned(4)));
typedef uint8_t vb __attribute__((vector_size(16), __may_alias__, aligned(1)));
constexpr int64_t kLanes = 16;
#define VLOAD(p) (*reinterpret_cast<const vf*>(p))

struct Layout {
  int64_t dh4, dhv, tk, tv;  // head dim padded to 4 / 16, keys padded to 16 (K) / 4 (V)
  explicit Layout(const AttentionDims& d)
      : dh4(round_up(d.head_dim, 4)), dhv(round_up(d.head_dim, 16)), tk(round_up(d.time, kTileK)),
        tv(round_up(d.time, 4)) {}
  int64_t k_bytes() const { return tk * dh4; }
  int64_t v_bytes() const { return tv * dhv; }
};

// Symmetric int8 scale of n values x[i * stride]: max|x| / 127 (1 if all are 0), NaN if a value is NaN or infinite.
VAMPNET_INLINE float scale_of(float max_abs, int bad) {
  if (bad) return std::numeric_limits<float>::quiet_NaN();
  return max_abs > 0.0f ? max_abs / 127.0f : 1.0f;
}

// max|x| over n values and whether one is NaN or infinite: 16 lanes at a time, then the scalar tail.
VAMPNET_INLINE float absmax_scale(const float* x, int64_t n) {
  const vu abs_mask = vu{} + 0x7FFFFFFFu;
  vf vmax{};
  vi vbad{};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const vu bits = reinterpret_cast<const vu&>(VLOAD(x + i)) & abs_mask;
    const vf a = reinterpret_cast<const vf&>(bits);
    vbad |= (bits > 0x7F7FFFFFu);  // exponent all ones: infinite or NaN
    vmax = a > vmax ? a : vmax;
  }
  float m = 0.0f;
  int bad = 0;
  for (int64_t l = 0; l < kLanes; ++l) {
    m = vmax[l] > m ? vmax[l] : m;
    bad |= vbad[l] != 0;
  }
  for (; i < n; ++i) {
    const float a = std::fabs(x[i]);
    bad |= !(a <= FLT_MAX);
    m = a > m ? a : m;
  }
  return scale_of(m, bad);
}

// q[i] = round(x[i] * (1 / scale)) (half to even, as ONNX Round), clamped to [-127, 127]; scale finite, > 0.
VAMPNET_INLINE void quantize_row(const float* x, int64_t n, float scale, int8_t* q) {
  const float inv = 1.0f / scale;
  for (int64_t i = 0; i < n; ++i) {
    const float r = std::nearbyint(x[i] * inv);
    q[i] = static_cast<int8_t>(r < -127.0f ? -127.0f : (r > 127.0f ? 127.0f : r));
  }
}

// Packed operands of one (batch item, head).
struct HeadPack {
  int8_t* k;     // [tk / 16][dh4 / 4][16][4]: VNNI layout, key j, dim d at ((j/16)*(dh4/4) + d/4)*64 + (j%16)*4 + d%4
  int32_t* ksum; // [tk] sum_d k8_jd (for the +128 offset of the unsigned query bytes)
  float* sk;     // [tk]
  int8_t* v;     // [tv / 4][dhv][4]: key j, dim e at ((j/4)*dhv + e)*4 + j%4
  float* sv;     // [dhv]
  bool k_bad;    // a K row of this head is not finite
  float* kt;     // portable path only: float k8, [dh4][tk]
  float* vfl;    // portable path only: float v8, [tv][dhv]
};

VAMPNET_CPU_DISPATCH
void pack_head(const float* qkv, const AttentionDims& d, const Layout& lay, int64_t b, int64_t h, HeadPack& p) {
  const int64_t T = d.time, D = d.dim, dh = d.head_dim, groups = lay.dh4 / 4;
  std::memset(p.k, 0, static_cast<size_t>(lay.k_bytes()));
  std::memset(p.v, 0, static_cast<size_t>(lay.v_bytes()));
  p.k_bad = false;
  std::vector<int8_t> row(static_cast<size_t>(dh));
  std::vector<float> inv_v(static_cast<size_t>(dh));
  for (int64_t j = 0; j < lay.tk; ++j) {
    p.sk[j] = 0.0f;
    p.ksum[j] = 0;
    if (j >= T) continue;
    const float* krow = qkv + (b * T + j) * 3 * D + D + h * dh;
    const float scale = absmax_scale(krow, dh);
    p.sk[j] = scale;
    if (std::isnan(scale)) {
      p.k_bad = true;
      continue;
    }
    quantize_row(krow, dh, scale, row.data());
    int32_t sum = 0;
    int8_t* tile = p.k + (j / kTileK) * groups * 64 + (j % kTileK) * 4;
    for (int64_t e = 0; e < dh; ++e) {
      tile[(e / 4) * 64 + e % 4] = row[static_cast<size_t>(e)];
      sum += row[static_cast<size_t>(e)];
    }
    p.ksum[j] = sum;
  }
  // V: per-column scales over all keys (rows read contiguously), then the VNNI layout.
  std::vector<float> vmax(static_cast<size_t>(dh), 0.0f);
  std::vector<int> vbad(static_cast<size_t>(dh), 0);
  const float* v0 = qkv + b * T * 3 * D + 2 * D + h * dh;
  for (int64_t j = 0; j < T; ++j) {
    const float* vrow = v0 + j * 3 * D;
    for (int64_t e = 0; e < dh; ++e) {
      const float a = std::fabs(vrow[e]);
      vbad[static_cast<size_t>(e)] |= !(a <= FLT_MAX);
      vmax[static_cast<size_t>(e)] = a > vmax[static_cast<size_t>(e)] ? a : vmax[static_cast<size_t>(e)];
    }
  }
  for (int64_t e = 0; e < lay.dhv; ++e) {
    p.sv[e] = e < dh ? scale_of(vmax[static_cast<size_t>(e)], vbad[static_cast<size_t>(e)]) : 0.0f;
  }
  for (int64_t e = 0; e < dh; ++e) inv_v[static_cast<size_t>(e)] = vbad[static_cast<size_t>(e)] ? 0.0f : 1.0f / p.sv[e];
  for (int64_t j = 0; j < T; ++j) {
    const float* vrow = v0 + j * 3 * D;
    for (int64_t e = 0; e < dh; ++e) {  // a NaN column quantizes to 0 here; its NaN scale makes the output NaN
      const float r = std::nearbyint(vrow[e] * inv_v[static_cast<size_t>(e)]);
      row[static_cast<size_t>(e)] = static_cast<int8_t>(r < -127.0f ? -127.0f : (r > 127.0f ? 127.0f : r));
    }
    int8_t* dst = p.v + (j / 4) * lay.dhv * 4 + j % 4;
    for (int64_t e = 0; e < dh; ++e) dst[e * 4] = row[static_cast<size_t>(e)];
  }
}

// ---- integer products: portable and AVX-512 VNNI (identical int32 results) ---------------------------------

// Portable path: the same integer sums computed in float32, exact because every partial sum is an integer below
// 2^24 (|q8 . k8| <= 127^2 * dh4 with dh4 <= 1024; P.V summed in chunks of kExactKeys keys: 255 * 127 * 512 < 2^24,
// each chunk then added in int32). So both paths give identical int32 sums, and identical outputs.
constexpr int64_t kExactKeys = 512;

// acc[r, j] = sum_d q8[r, d] k8[j, d] + 128 ksum[j] (what the VNNI path's unsigned-offset sum equals), r < rows.
VAMPNET_CPU_DISPATCH
void scores_float(const uint8_t* qu, int64_t rows, const float* kt, const int32_t* ksum, const Layout& lay,
                  float* tmp, int32_t* acc) {
  const int64_t tk = lay.tk;
  for (int64_t r0 = 0; r0 < rows; r0 += 4) {
    float* s0 = tmp;
    float* s1 = tmp + tk;
    float* s2 = tmp + 2 * tk;
    float* s3 = tmp + 3 * tk;
    for (int64_t j = 0; j < 4 * tk; ++j) tmp[j] = 0.0f;
    for (int64_t d = 0; d < lay.dh4; ++d) {
      const float q0 = static_cast<float>(qu[r0 * lay.dh4 + d]) - 128.0f;
      const float q1 = static_cast<float>(qu[(r0 + 1) * lay.dh4 + d]) - 128.0f;
      const float q2 = static_cast<float>(qu[(r0 + 2) * lay.dh4 + d]) - 128.0f;
      const float q3 = static_cast<float>(qu[(r0 + 3) * lay.dh4 + d]) - 128.0f;
      const float* krow = kt + d * tk;
      for (int64_t j = 0; j < tk; ++j) {
        s0[j] += q0 * krow[j];
        s1[j] += q1 * krow[j];
        s2[j] += q2 * krow[j];
        s3[j] += q3 * krow[j];
      }
    }
    for (int64_t r = 0; r < 4; ++r) {
      for (int64_t j = 0; j < tk; ++j) {
        acc[(r0 + r) * tk + j] = static_cast<int32_t>(tmp[r * tk + j]) + 128 * ksum[j];
      }
    }
  }
}

// acc[r, e] = sum_j p8[r, j] v8[j, e] for r < rows, e < dhv (p8 rows tk apart; vfl [tv][dhv]).
VAMPNET_CPU_DISPATCH
void values_float(const uint8_t* p8, int64_t rows, const float* vfl, const Layout& lay, float* tmp, int32_t* acc) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* p = p8 + r * lay.tk;
    int32_t* out = acc + r * lay.dhv;
    for (int64_t e = 0; e < lay.dhv; ++e) out[e] = 0;
    for (int64_t j0 = 0; j0 < lay.tv; j0 += kExactKeys) {
      for (int64_t e = 0; e < lay.dhv; ++e) tmp[e] = 0.0f;
      const int64_t j1 = std::min(lay.tv, j0 + kExactKeys);
      for (int64_t j = j0; j < j1; ++j) {
        if (p[j] == 0) continue;
        const float pj = static_cast<float>(p[j]);
        const float* vrow = vfl + j * lay.dhv;
        for (int64_t e = 0; e < lay.dhv; ++e) tmp[e] += pj * vrow[e];
      }
      for (int64_t e = 0; e < lay.dhv; ++e) out[e] += static_cast<int32_t>(tmp[e]);
    }
  }
}

// The float copies of a head's int8 K (transposed, [dh4][tk]) and V ([tv][dhv]) for the portable path.
void unpack_float(const int8_t* k, const int8_t* v, const Layout& lay, float* kt, float* vfl) {
  const int64_t groups = lay.dh4 / 4;
  for (int64_t j = 0; j < lay.tk; ++j) {
    const int8_t* tile = k + (j / kTileK) * groups * 64 + (j % kTileK) * 4;
    for (int64_t d = 0; d < lay.dh4; ++d) kt[d * lay.tk + j] = static_cast<float>(tile[(d / 4) * 64 + d % 4]);
  }
  for (int64_t j = 0; j < lay.tv; ++j) {
    for (int64_t e = 0; e < lay.dhv; ++e) vfl[j * lay.dhv + e] = static_cast<float>(v[((j / 4) * lay.dhv + e) * 4 + j % 4]);
  }
}

#if VAMPNET_ATTN_INT8_X86
#define VAMPNET_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

VAMPNET_VNNI inline __m512i broadcast4(const uint8_t* p) {
  int32_t w;
  std::memcpy(&w, p, 4);
  return _mm512_set1_epi32(w);
}

VAMPNET_VNNI void scores_vnni(const uint8_t* qu, int64_t rows, const int8_t* k, const Layout& lay, int32_t* acc) {
  const int64_t groups = lay.dh4 / 4;
  for (int64_t r0 = 0; r0 < rows; r0 += 4) {
    const uint8_t* q0 = qu + r0 * lay.dh4;
    for (int64_t t = 0; t < lay.tk / kTileK; ++t) {
      const int8_t* tile = k + t * groups * 64;
      __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
      for (int64_t g = 0; g < groups; ++g) {
        const __m512i kv = _mm512_loadu_si512(tile + g * 64);
        a0 = _mm512_dpbusd_epi32(a0, broadcast4(q0 + 4 * g), kv);
        a1 = _mm512_dpbusd_epi32(a1, broadcast4(q0 + lay.dh4 + 4 * g), kv);
        a2 = _mm512_dpbusd_epi32(a2, broadcast4(q0 + 2 * lay.dh4 + 4 * g), kv);
        a3 = _mm512_dpbusd_epi32(a3, broadcast4(q0 + 3 * lay.dh4 + 4 * g), kv);
      }
      int32_t* dst = acc + r0 * lay.tk + t * kTileK;
      _mm512_storeu_si512(dst, a0);
      _mm512_storeu_si512(dst + lay.tk, a1);
      _mm512_storeu_si512(dst + 2 * lay.tk, a2);
      _mm512_storeu_si512(dst + 3 * lay.tk, a3);
    }
  }
}

VAMPNET_VNNI void values_vnni(const uint8_t* p8, int64_t rows, const int8_t* v, const Layout& lay, int32_t* acc) {
  const int64_t blocks = lay.dhv / 16, stride = lay.dhv * 4;
  for (int64_t r0 = 0; r0 < rows; r0 += 4) {
    const uint8_t* p0 = p8 + r0 * lay.tk;
    for (int64_t e0 = 0; e0 < blocks; e0 += 2) {
      const bool two = e0 + 1 < blocks;
      __m512i a[4][2];
      for (auto& row : a) row[0] = row[1] = _mm512_setzero_si512();
      for (int64_t j4 = 0; j4 < lay.tv / 4; ++j4) {
        const int8_t* vt = v + j4 * stride + e0 * 64;
        const __m512i v0 = _mm512_loadu_si512(vt);
        const __m512i v1 = two ? _mm512_loadu_si512(vt + 64) : _mm512_setzero_si512();
        for (int r = 0; r < 4; ++r) {
          const __m512i pb = broadcast4(p0 + r * lay.tk + 4 * j4);
          a[r][0] = _mm512_dpbusd_epi32(a[r][0], pb, v0);
          a[r][1] = _mm512_dpbusd_epi32(a[r][1], pb, v1);
        }
      }
      for (int r = 0; r < 4; ++r) {
        int32_t* dst = acc + (r0 + r) * lay.dhv + e0 * 16;
        _mm512_storeu_si512(dst, a[r][0]);
        if (two) _mm512_storeu_si512(dst + 16, a[r][1]);
      }
    }
  }
}
#endif

// ---- float parts ------------------------------------------------------------------------------------------------

// p8[j] = floor(exp(s[j] - m) * 255 + 0.5) for j < n (n a multiple of 16; s[j] <= m, none NaN); returns the sum.
// exp: the Cephes core of fast_math.h with 2^n built in the exponent bits (as RelativePositionAttention's exp16).
VAMPNET_CPU_DISPATCH int32_t softmax_u8(const float* s, int64_t n, float m, uint8_t* p8) {
  vi total{};
  for (int64_t j = 0; j < n; j += kLanes) {
    vf x = VLOAD(s + j) - m;
    x = x < -87.0f ? vf{} - 87.0f : x;
    typedef float vreg __attribute__((vector_size(64)));
    const vreg xr = x;
    vreg nn, poly;
    cephes_exp_reduced(xr, nn, poly);
    const vf t = nn + 12582912.0f;
    const vu exponent = (reinterpret_cast<const vu&>(t) - 0x4B400000u + 127u) << 23;
    const vf p = poly * reinterpret_cast<const vf&>(exponent);
    const vi q = __builtin_convertvector(p * 255.0f + 0.5f, vi);  // p in [0, 1]: truncation = floor
    *reinterpret_cast<vb*>(p8 + j) = __builtin_convertvector(q, vb);
    total += q;
  }
  int32_t sum = 0;
  for (int64_t l = 0; l < kLanes; ++l) sum += total[l];
  return sum;
}

struct Scratch {
  std::vector<uint8_t> qu;   // [kBlockQ][dh4]
  std::vector<int32_t> acc;  // [kBlockQ][tk]
  std::vector<float> s;      // [tk]
  std::vector<uint8_t> p8;   // [kBlockQ][tk] (keys past T: 0)
  std::vector<int32_t> pv;   // [kBlockQ][dhv]
  std::vector<int8_t> q8;    // [dh4]
  std::vector<float> ftmp;   // portable path: [4][tk] score sums, then [dhv] P.V sums
  Scratch(const Layout& lay, bool vnni)
      : qu(static_cast<size_t>(kBlockQ * lay.dh4)), acc(static_cast<size_t>(kBlockQ * lay.tk)),
        s(static_cast<size_t>(lay.tk)), p8(static_cast<size_t>(kBlockQ * lay.tk)),
        pv(static_cast<size_t>(kBlockQ * lay.dhv)), q8(static_cast<size_t>(lay.dh4)),
        ftmp(vnni ? 0 : static_cast<size_t>(std::max(4 * lay.tk, lay.dhv))) {}
};

VAMPNET_CPU_DISPATCH
void attend_block(const float* qkv, const float* bias_row, const HeadPack& p, float* out, const AttentionDims& d,
                  const Layout& lay, int64_t b, int64_t h, int64_t q0, bool vnni, Scratch& w) {
  const int64_t T = d.time, D = d.dim, dh = d.head_dim;
  const int64_t nq = std::min(kBlockQ, T - q0), rows = round_up(nq, 4);
  const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(dh));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  float row_c[kBlockQ];
  int32_t row_l[kBlockQ];
  bool row_bad[kBlockQ];
  std::fill(w.qu.begin(), w.qu.end(), uint8_t{128});  // padding dims and rows: q8 = 0
  for (int64_t r = 0; r < nq; ++r) {
    const float* qrow = qkv + (b * T + q0 + r) * 3 * D + h * dh;
    const float sq = absmax_scale(qrow, dh);
    row_bad[r] = std::isnan(sq) || p.k_bad;
    row_c[r] = sq * inv_sqrt;
    if (row_bad[r]) continue;
    quantize_row(qrow, dh, sq, w.q8.data());
    uint8_t* qu = w.qu.data() + r * lay.dh4;
    for (int64_t e = 0; e < dh; ++e) qu[e] = static_cast<uint8_t>(w.q8[static_cast<size_t>(e)] + 128);
  }
#if VAMPNET_ATTN_INT8_X86
  if (vnni) scores_vnni(w.qu.data(), rows, p.k, lay, w.acc.data());
  else scores_float(w.qu.data(), rows, p.kt, p.ksum, lay, w.ftmp.data(), w.acc.data());
#else
  (void)vnni;
  scores_float(w.qu.data(), rows, p.kt, p.ksum, lay, w.ftmp.data(), w.acc.data());
#endif
  std::fill(w.p8.begin(), w.p8.end(), uint8_t{0});
  for (int64_t r = 0; r < nq; ++r) {
    if (row_bad[r]) continue;
    const int32_t* a = w.acc.data() + r * lay.tk;
    const float* bias = bias_row + (T - 1) - (q0 + r);  // bias[j] = table[(j - i) + T - 1]
    const float c = row_c[r];
    float* srow = w.s.data();
    for (int64_t j = 0; j < T; ++j) srow[j] = static_cast<float>(a[j] - 128 * p.ksum[j]) * (c * p.sk[j]) + bias[j];
    for (int64_t j = T; j < lay.tk; ++j) srow[j] = -FLT_MAX;  // padding keys: probability 0
    const vu abs_mask = vu{} + 0x7FFFFFFFu;
    vf vmax = vf{} - FLT_MAX;
    vi vbad{};
    for (int64_t j = 0; j < lay.tk; j += kLanes) {
      const vf x = VLOAD(srow + j);
      vbad |= ((reinterpret_cast<const vu&>(x) & abs_mask) > 0x7F7FFFFFu);
      vmax = x > vmax ? x : vmax;
    }
    float m = vmax[0];
    int bad = 0;
    for (int64_t l = 0; l < kLanes; ++l) {
      m = vmax[l] > m ? vmax[l] : m;
      bad |= vbad[l] != 0;
    }
    if (bad) {
      row_bad[r] = true;
      continue;
    }
    row_l[r] = softmax_u8(w.s.data(), lay.tk, m, w.p8.data() + r * lay.tk);
  }
#if VAMPNET_ATTN_INT8_X86
  if (vnni) values_vnni(w.p8.data(), rows, p.v, lay, w.pv.data());
  else values_float(w.p8.data(), rows, p.vfl, lay, w.ftmp.data(), w.pv.data());
#else
  values_float(w.p8.data(), rows, p.vfl, lay, w.ftmp.data(), w.pv.data());
#endif
  for (int64_t r = 0; r < nq; ++r) {
    float* dst = out + (b * T + q0 + r) * D + h * dh;
    if (row_bad[r]) {
      for (int64_t e = 0; e < dh; ++e) dst[e] = nan;
      continue;
    }
    const float inv_l = 1.0f / static_cast<float>(row_l[r]);  // row_l >= 255: the row's max gives 255
    const int32_t* a = w.pv.data() + r * lay.dhv;
    for (int64_t e = 0; e < dh; ++e) dst[e] = static_cast<float>(a[e]) * (p.sv[e] * inv_l);
  }
}

}  // namespace

bool attention_int8_has_vnni() {
#if VAMPNET_ATTN_INT8_X86
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vnni");
  return has;
#else
  return false;
#endif
}

void relative_position_attention_int8(const float* qkv, const float* rel_bias, float* out, const AttentionDims& d,
                                      const Parallel& par, bool allow_vnni) {
  const int64_t T = d.time, H = d.heads;
  if (d.batch == 0 || T == 0) return;
  const bool vnni = allow_vnni && attention_int8_has_vnni();
  const Layout lay(d);
  // Per-offset bias: table[h, (j - i) + T - 1].
  const int64_t offsets = 2 * T - 1;
  std::vector<float> table(static_cast<size_t>(H * offsets));
  for (int64_t r = 0; r < offsets; ++r) {
    const int64_t bucket = relative_position_bucket(r - (T - 1), d.num_buckets, d.max_distance);
    for (int64_t h = 0; h < H; ++h) table[static_cast<size_t>(h * offsets + r)] = rel_bias[bucket * H + h];
  }
  const int64_t heads = d.batch * H;
  std::vector<int8_t> kbuf(static_cast<size_t>(heads * lay.k_bytes())), vbuf(static_cast<size_t>(heads * lay.v_bytes()));
  std::vector<int32_t> ksum(static_cast<size_t>(heads * lay.tk));
  std::vector<float> sk(static_cast<size_t>(heads * lay.tk)), sv(static_cast<size_t>(heads * lay.dhv));
  std::vector<float> kfloat(vnni ? 0 : static_cast<size_t>(heads * lay.k_bytes()));
  std::vector<float> vfloat(vnni ? 0 : static_cast<size_t>(heads * lay.v_bytes()));
  std::vector<HeadPack> packs(static_cast<size_t>(heads));
  for (int64_t u = 0; u < heads; ++u) {
    packs[static_cast<size_t>(u)] = HeadPack{kbuf.data() + u * lay.k_bytes(), ksum.data() + u * lay.tk,
                                             sk.data() + u * lay.tk, vbuf.data() + u * lay.v_bytes(),
                                             sv.data() + u * lay.dhv, false,
                                             vnni ? nullptr : kfloat.data() + u * lay.k_bytes(),
                                             vnni ? nullptr : vfloat.data() + u * lay.v_bytes()};
  }
  parallel_blocks(par, heads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) {
      HeadPack& p = packs[static_cast<size_t>(u)];
      pack_head(qkv, d, lay, u / H, u % H, p);
      if (!vnni) unpack_float(p.k, p.v, lay, p.kt, p.vfl);
    }
  });
  const int64_t query_blocks = (T + kBlockQ - 1) / kBlockQ;
  // A size-only rule (never the thread count) for the block size: at least ~1 MOP of work per block.
  const int64_t unit_ops = 4 * kBlockQ * T * d.head_dim;
  const int64_t min_units = std::max<int64_t>(1, (int64_t{1} << 20) / unit_ops);
  parallel_blocks(par, heads * query_blocks, min_units, [&](int64_t begin, int64_t end) {
    Scratch w(lay, vnni);
    for (int64_t u = begin; u < end; ++u) {
      const int64_t qb = u % query_blocks, bh = u / query_blocks;
      attend_block(qkv, table.data() + (bh % H) * offsets, packs[static_cast<size_t>(bh)], out, d, lay, bh / H,
                   bh % H, qb * kBlockQ, vnni, w);
    }
  });
}

// ---- ONNX Runtime binding ----------------------------------------------------------------------------------

namespace {

struct RelativePositionAttentionInt8Kernel : OrtKernel<RelativePositionAttentionInt8Kernel> {
  int64_t num_heads, num_buckets, max_distance;
  RelativePositionAttentionInt8Kernel(const OrtApi& api, const OrtKernelInfo* info)
      : num_heads(attr_int(api, info, kRelativePositionAttentionInt8, "num_heads", std::numeric_limits<int64_t>::min())),
        num_buckets(attr_int(api, info, kRelativePositionAttentionInt8, "num_buckets",
                             contract::RelativePositionAttentionInt8::kNumBuckets)),
        max_distance(attr_int(api, info, kRelativePositionAttentionInt8, "max_distance",
                              contract::RelativePositionAttentionInt8::kMaxDistance)) {
    check(num_heads != std::numeric_limits<int64_t>::min(), kRelativePositionAttentionInt8,
          "attribute 'num_heads' is required");
    relative_position_attention_int8_check({1, 1, 3 * num_heads}, {num_buckets, num_heads}, num_heads, num_buckets,
                                           max_distance);  // the attribute checks, named for this op
  }
  void Compute(Ort::KernelContext& ctx) {
    const InputView qkv = get_input<contract::RelativePositionAttentionInt8>(ctx, 0);
    const InputView bias = get_input<contract::RelativePositionAttentionInt8>(ctx, 1);
    const AttentionDims d =
        relative_position_attention_int8_check(qkv.shape, bias.shape, num_heads, num_buckets, max_distance);
    float* out = get_output<float>(ctx, 0, {d.batch, d.time, d.dim});
    relative_position_attention_int8(qkv.as<float>(), bias.as<float>(), out, d, OrtParallel(ctx));
  }
};

struct RelativePositionAttentionInt8Op
    : OrtOp<RelativePositionAttentionInt8Op, RelativePositionAttentionInt8Kernel, contract::RelativePositionAttentionInt8> {};

}  // namespace

const OrtCustomOp* relative_position_attention_int8_op() {
  static const RelativePositionAttentionInt8Op op;
  return &op;
}

}  // namespace vampnet
