// SampleAndRemask: one step of VampNet's iterative decode (docs/SPEC.md section 2) with the initial mask count N0
// given per batch item. See docs/SAMPLING.md for the full contract.
//
//   logits float [B, P, T, V], codes int64 [B, C, T], start_codes int64 [B, C, T], n0 int64 [B], step int64 [],
//   num_steps int64 [], uniforms float [2, B, P, T], temperature float [], mask_temperature float [],
//   top_p float [], top_k int64 [], typical_mass float [], typical_min_tokens int64 [], sample_cutoff float []
//   -> next_codes int64 [B, C, T], sampled int64 [B, C, T]
//
// Codebooks 0 .. C-P-1 are conditioning (copied from start_codes), C-P .. C-1 are predicted; MASK = V.
#pragma once
#include <cstdint>

#include "common.h"
#include "op_contract.h"

struct OrtCustomOp;

namespace vampnet {

constexpr const char* kSampleAndRemask = contract::SampleAndRemask::kName;

struct SampleDims {
  int64_t batch = 0, codebooks = 0, predicted = 0, time = 0, vocab = 0;
};

struct SampleParams {
  int64_t step = 0, num_steps = 1;
  float temperature = 1.f, mask_temperature = 0.f, top_p = 0.f;
  int64_t top_k = 0;
  float typical_mass = 0.f;
  int64_t typical_min_tokens = 0;
  float sample_cutoff = -1.f;
};

// Shapes of (logits, codes, start_codes, n0, uniforms) and the rank of every scalar input; throws vampnet::Error.
SampleDims sample_and_remask_check_shapes(const Shape& logits, const Shape& codes, const Shape& start_codes,
                                          const Shape& n0, const Shape& uniforms);
// Value ranges of the scalar parameters and of codes/start_codes/n0/uniforms.
void sample_and_remask_check_values(const SampleDims& d, const SampleParams& params, const int64_t* codes,
                                    const int64_t* start_codes, const int64_t* n0, const float* uniforms);
// Runs the step (inputs already validated). Throws vampnet::Error if a masked position has NaN or +inf logits
// or only -inf logits; the outputs are then unspecified.
void sample_and_remask(const float* logits, const int64_t* codes, const int64_t* start_codes, const int64_t* n0,
                       const float* uniforms, const SampleDims& d, const SampleParams& params, int64_t* next_codes,
                       int64_t* sampled, const Parallel& par);

// The schedule pieces, exposed for tests: r = (step + 1) / num_steps and gamma(r) in float32, and the number of
// positions to re-mask.
float schedule_r(int64_t step, int64_t num_steps);
float schedule_gamma(float r);
// cos in float32 as upstream (torch CPU / SLEEF 1-ulp algorithm) computes it, for |d| < 125.
float schedule_cos(float d);
int64_t schedule_num_to_mask(int64_t step, int64_t num_steps, int64_t n0, int64_t masked_in_row);

// Row-level pieces of the step, exposed for tests and the numpy bindings (rows: [rows, V], validated finite or -inf
// with at least one finite value per row, else vampnet::Error).
// filter_rows: typical, top-k and top-p filtering as configured in `params` (filtered logits become -inf).
void filter_rows(const float* logits, int64_t rows, int64_t vocab, const SampleParams& params, float* out);
// sample_rows: the token of each row (inverse-CDF draw with uniforms[row] if `sample`, else argmax) and its
// probability under softmax(filtered logits / temperature) (softmax(filtered logits) when temperature <= 0).
void sample_rows(const float* logits, int64_t rows, int64_t vocab, const SampleParams& params, bool sample,
                 const float* uniforms, int64_t* tokens, float* probs);
// The re-mask cut-off of one row of confidences: its k-th smallest (0-based); -inf for k <= 0, +inf for k >= n.
// Positions with confidence strictly below it are re-masked. `scratch` holds n floats.
float remask_cutoff(const float* confidence, int64_t n, int64_t k, float* scratch);

const OrtCustomOp* sample_and_remask_op();

}  // namespace vampnet
