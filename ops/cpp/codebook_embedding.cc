#include "codebook_embedding.h"

#include <algorithm>
#include <cstring>

#include "ort_op.h"

namespace vampnet {

EmbeddingDims codebook_embedding_check(const Shape& codes, const Shape& tables, const Shape& bias) {
  check_rank(kCodebookEmbedding, "codes", codes, 3);
  check_nonempty(kCodebookEmbedding, "codes", codes);
  check_rank(kCodebookEmbedding, "tables", tables, 3);
  check_nonempty(kCodebookEmbedding, "tables", tables);
  check_rank(kCodebookEmbedding, "bias", bias, 1);
  check_dim(kCodebookEmbedding, "tables", tables, 0, codes[1], "the number of codebooks in codes (dim 1)");
  check_dim(kCodebookEmbedding, "bias", bias, 0, tables[2], "the embedding width (tables dim 2)");
  check(tables[1] >= 2, kCodebookEmbedding,
        "input 'tables' dim 1 must be vocab_size + 1 >= 2 (the last row is MASK), got shape " + shape_str(tables));
  return EmbeddingDims{codes[0], codes[1], codes[2], tables[1], tables[2]};
}

void codebook_embedding_check_codes(const int64_t* codes, const EmbeddingDims& d) {
  const int64_t n = d.batch * d.codebooks * d.time;
  const int64_t mask_id = d.vocab_plus_mask - 1;
  for (int64_t i = 0; i < n; ++i) {
    if (codes[i] < 0 || codes[i] > mask_id) {
      const int64_t t = i % d.time, c = (i / d.time) % d.codebooks, b = i / (d.time * d.codebooks);
      throw Error(kCodebookEmbedding, "token id " + std::to_string(codes[i]) + " at [" + std::to_string(b) + ", " +
                                          std::to_string(c) + ", " + std::to_string(t) +
                                          "] is out of range [0, " + std::to_string(mask_id) + "] (" +
                                          std::to_string(mask_id) + " = MASK)");
    }
  }
}

namespace {
VAMPNET_CPU_DISPATCH void add_row(float* y, const float* row, int64_t dim) {
  for (int64_t i = 0; i < dim; ++i) y[i] += row[i];
}
}  // namespace

void codebook_embedding(const int64_t* codes, const float* tables, const float* bias, float* y,
                        const EmbeddingDims& d, const Parallel& par) {
  const int64_t rows = d.batch * d.time;
  const int64_t rows_per_block = std::max<int64_t>(1, 8192 / (d.dim * d.codebooks));
  parallel_blocks(par, rows, rows_per_block, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / d.time, t = r % d.time;
      float* yr = y + r * d.dim;
      std::memcpy(yr, bias, sizeof(float) * static_cast<size_t>(d.dim));
      for (int64_t c = 0; c < d.codebooks; ++c) {
        const int64_t code = codes[(b * d.codebooks + c) * d.time + t];
        const float* row = tables + (c * d.vocab_plus_mask + code) * d.dim;
        add_row(yr, row, d.dim);
      }
    }
  });
}

namespace {
struct CodebookEmbeddingKernel : OrtKernel<CodebookEmbeddingKernel> {
  CodebookEmbeddingKernel(const OrtApi&, const OrtKernelInfo*) {}
  void Compute(Ort::KernelContext& ctx) {
    const InputView codes = get_input<contract::CodebookEmbedding>(ctx, 0);
    const InputView tables = get_input<contract::CodebookEmbedding>(ctx, 1);
    const InputView bias = get_input<contract::CodebookEmbedding>(ctx, 2);
    const EmbeddingDims d = codebook_embedding_check(codes.shape, tables.shape, bias.shape);
    codebook_embedding_check_codes(codes.as<int64_t>(), d);
    float* y = get_output<float>(ctx, 0, {d.batch, d.time, d.dim});
    codebook_embedding(codes.as<int64_t>(), tables.as<float>(), bias.as<float>(), y, d, OrtParallel(ctx));
  }
};

// Name, input and output types: ops/contract.py (via the generated op_contract.h).
struct CodebookEmbeddingOp : OrtOp<CodebookEmbeddingOp, CodebookEmbeddingKernel, contract::CodebookEmbedding> {};
}  // namespace

const OrtCustomOp* codebook_embedding_op() {
  static const CodebookEmbeddingOp op;
  return &op;
}

}  // namespace vampnet
