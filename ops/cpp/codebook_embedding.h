// CodebookEmbedding: codes [B, C, T] int64 -> embeddings [B, T, D] float.
//
//   Y[b, t, :] = bias + sum_c tables[c, codes[b, c, t], :]
//
// `tables` [C, V + 1, D] are the per-codebook *projected* tables folded at export time:
//   tables[c, v, :] = W_proj[:, 8c : 8c + 8] @ row_c(v),  row_c(v) = codec codebook c row v for v < V and the
//   model's MASK vector for codebook c for v = V.
// That is exactly upstream's lookup -> concatenate -> 1x1 conv (with bias), with the conv folded into the
// tables. Token id V (= tables.shape[1] - 1) is MASK; ids outside [0, V] are an error.
#pragma once
#include "common.h"
#include "op_contract.h"

struct OrtCustomOp;

namespace vampnet {

constexpr const char* kCodebookEmbedding = contract::CodebookEmbedding::kName;

struct EmbeddingDims {
  int64_t batch, codebooks, time, vocab_plus_mask, dim;
};
EmbeddingDims codebook_embedding_check(const Shape& codes, const Shape& tables, const Shape& bias);
// Throws if any code is outside [0, V]; call before computing.
void codebook_embedding_check_codes(const int64_t* codes, const EmbeddingDims& d);
void codebook_embedding(const int64_t* codes, const float* tables, const float* bias, float* y,
                        const EmbeddingDims& d, const Parallel& par);
const OrtCustomOp* codebook_embedding_op();

}  // namespace vampnet
