// RelativePositionAttentionInt8: RelativePositionAttention (same inputs, outputs, attributes and bucket rule) with
// int8 QK^T and PV products (docs/ATTENTION.md, "int8 attention"):
//
//   q8_i = round(q_i * (1 / sq_i)), sq_i = max|q_i| / 127  per query row and head (symmetric, dynamic)
//   k8_j = round(k_j / sk_j), sk_j = max|k_j| / 127        per key row and head
//   v8_je = round(v_je / sv_e), sv_e = max_j |v_je| / 127  per value column (over all keys) and head
//   s_ij  = (q8_i . k8_j) * ((sq_i / sqrt(dh)) * sk_j) + rel_bias[bucket(j - i), h]       (float32)
//   p8_ij = floor(exp(s_ij - max_j s_ij) * 255 + 0.5)                                       (uint8, 0..255)
//   out_ie = (sum_j p8_ij v8_je) * (sv_e * (1 / sum_j p8_ij))
//
// The integer dot products are exact (int32), so the AVX-512 VNNI path and the portable path give bit-identical
// outputs, and so do all thread counts. A row holding NaN or infinity (q row, any k row of the head, a v column)
// gives NaN where it reaches. T is limited to 65536 (255 * 127 * T must fit int32).
#pragma once
#include "relative_position_attention.h"

struct OrtCustomOp;

namespace vampnet {

constexpr const char* kRelativePositionAttentionInt8 = contract::RelativePositionAttentionInt8::kName;

// The float op's checks, plus T <= 65536.
AttentionDims relative_position_attention_int8_check(const Shape& qkv, const Shape& rel_bias, int64_t num_heads,
                                                     int64_t num_buckets, int64_t max_distance);
// Whether this CPU runs the AVX-512 VNNI path (runtime check; the portable path otherwise).
bool attention_int8_has_vnni();
// allow_vnni = false forces the portable path (tests: both paths agree bit for bit).
void relative_position_attention_int8(const float* qkv, const float* rel_bias, float* out, const AttentionDims& dims,
                                      const Parallel& par, bool allow_vnni = true);

const OrtCustomOp* relative_position_attention_int8_op();

}  // namespace vampnet
