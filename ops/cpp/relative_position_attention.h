// RelativePositionAttention: bidirectional multi-head self-attention with a T5 relative-position bias.
//
//   qkv      float [B, T, 3D]          last axis = [Q | K | V], each D wide; head h uses channels h*dh..(h+1)*dh-1
//   rel_bias float [num_buckets, H]    the learned bias table (layer 0 of VampNet; shared by every layer)
//   out      float [B, T, D]
//
//   out[b, i, h] = sum_j softmax_j(q_i . k_j / sqrt(dh) + rel_bias[bucket(j - i), h]) v_j      (no mask)
//
// bucket(rel) is the generalised T5 bidirectional rule (tests/golden/README.md item 10): num_buckets/2 buckets per
// direction, +num_buckets/2 when rel > 0, exact below num_buckets/4, log-spaced up to max_distance, log in float32.
// The QKV and output projections are ORT MatMuls outside the op (docs/ATTENTION.md explains the boundary).
//
// Working memory per call: a workspace of H*(2T-1+128) floats (per-offset bias table) + about 2*B*T*D floats (K^T / V
// packed in 64-key tiles), plus one scratch tile set per running work block (attention_scratch_floats); nothing of
// size T*T is ever materialised. Formula in docs/ATTENTION.md.
#pragma once
#include "common.h"
#include "op_contract.h"

struct OrtCustomOp;

namespace vampnet {

constexpr const char* kRelativePositionAttention = contract::RelativePositionAttention::kName;

struct AttentionDims {
  int64_t batch, time, dim, heads, head_dim, num_buckets, max_distance;
};

// Attribute checks (num_heads > 0, num_buckets even and >= 4, max_distance > num_buckets / 4).
void relative_position_attention_check_attributes(int64_t num_heads, int64_t num_buckets, int64_t max_distance);
// Validates attributes and input shapes; returns the problem dims.
AttentionDims relative_position_attention_check(const Shape& qkv, const Shape& rel_bias, int64_t num_heads,
                                                int64_t num_buckets, int64_t max_distance);

// Bucket of one relative position rel = key - query.
int64_t relative_position_bucket(int64_t rel, int64_t num_buckets, int64_t max_distance);
// buckets[i, j] = relative_position_bucket(j - i) for i < t_query, j < t_key (row-major [t_query, t_key]).
void relative_position_buckets(int64_t t_query, int64_t t_key, int64_t num_buckets, int64_t max_distance,
                               int64_t* buckets);

// Scratch floats one work block needs (used by the memory formula in docs/ATTENTION.md).
int64_t attention_scratch_floats(int64_t head_dim);

// Floats of working memory one call needs (bias table + packed K/V tiles; see docs/ATTENTION.md).
int64_t relative_position_attention_workspace_floats(const AttentionDims& dims);
// With a caller-provided workspace of relative_position_attention_workspace_floats(dims) floats ...
void relative_position_attention(const float* qkv, const float* rel_bias, float* out, const AttentionDims& dims,
                                 float* workspace, const Parallel& par);
// ... or allocating it.
void relative_position_attention(const float* qkv, const float* rel_bias, float* out, const AttentionDims& dims,
                                 const Parallel& par);

const OrtCustomOp* relative_position_attention_op();

}  // namespace vampnet
