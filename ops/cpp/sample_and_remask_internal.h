// SampleAndRemask internals shared by its translation units (not part of the public kernel API):
//   sample_and_remask_validate.cc  input checks          sample_and_remask_schedule.cc  gamma(r), re-mask count
//   sample_and_remask_select.cc    typical/top-k/top-p   sample_and_remask_sample.cc    one row -> token, prob
//   sample_and_remask.cc           the step               sample_and_remask_op.cc        ONNX Runtime binding
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "sample_and_remask.h"

namespace vampnet {
namespace sampling {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int kLanes = 16;     // lanes of the fixed-order row reductions
constexpr int64_t kBlock = 16;  // weights per block sum of the inverse-CDF scan

// Per-thread scratch of one block of positions.
struct Scratch {
  std::vector<float> filtered, weights, aux, block_sums;
  std::vector<uint64_t> order;
  explicit Scratch(int64_t v)
      : filtered(static_cast<size_t>(v)), weights(static_cast<size_t>(v)), aux(static_cast<size_t>(v)),
        block_sums(static_cast<size_t>((v + kBlock - 1) / kBlock)), order(static_cast<size_t>(v)) {}
};

// What one sampled row does, derived from SampleParams (the one place that interprets the "off" values).
struct StepConfig {
  bool sample, typical, top_k, top_p;
  float tau;  // 1 when temperature <= 0
};
// `sample`: whether this step draws at all (else argmax); it also needs temperature > 0.
StepConfig step_config(const SampleParams& params, int64_t vocab, bool sample);

enum class RowError : int32_t { kNone = 0, kNaN = 1, kPosInf = 2, kAllNegInf = 3, kOverflow = 4 };
// Throws the vampnet::Error of a row error; `where` names the row ("masked position (item 0, ...)", "row 3").
[[noreturn]] void throw_row_error(RowError error, const std::string& where);

struct Draw {
  int64_t token;
  float prob;
};
// One row of logits -> its token and probability (sample_and_remask_sample.cc). `u` is the row's sampling uniform.
RowError sample_row(const float* row, int64_t n, const StepConfig& cfg, const SampleParams& params, float u,
                    Scratch& s, Draw& out);

// Row primitives (sample_and_remask_sample.cc; per-ISA clones inside).
// Max of a row in fixed lane order; NaN is ignored (callers detect NaN separately).
float row_max(const float* x, int64_t n);
bool has_nan(const float* x, int64_t n);
// w[i] = exp(x[i] / tau - shift) and the block sums of the inverse-CDF scan; returns the in-order total.
float exp_weights(const float* x, int64_t n, float tau, float shift, float* w, float* block_sums);

// Filters (sample_and_remask_select.cc): filtered logits become -inf. x holds no NaN/+inf and a finite value.
void typical_filter(float* x, int64_t n, float mass, int64_t min_tokens, Scratch& s);
void top_k_filter(float* x, int64_t n, int64_t k, Scratch& s);
void top_p_filter(float* x, int64_t n, float top_p, Scratch& s);

}  // namespace sampling
}  // namespace vampnet
