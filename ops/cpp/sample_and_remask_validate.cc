// SampleAndRemask, validation: shapes, then value ranges, before any computation (see sample_and_remask.h).
#include <cmath>
#include <sstream>
#include <string>

#include "sample_and_remask.h"

namespace vampnet {

namespace {

constexpr int64_t kMaxN0 = int64_t{1} << 24;

std::string scalar_str(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

}  // namespace

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

}  // namespace vampnet
