// SampleAndRemask, the step: every masked position sampled independently (sample_and_remask_sample.cc), then per
// item the lowest-confidence positions re-masked by the schedule (sample_and_remask_schedule.cc).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "sample_and_remask_internal.h"

namespace vampnet {

void sample_and_remask(const float* logits, const int64_t* codes, const int64_t* start_codes, const int64_t* n0,
                       const float* uniforms, const SampleDims& d, const SampleParams& p, int64_t* next_codes,
                       int64_t* sampled, const Parallel& par) {
  using namespace sampling;
  const int64_t B = d.batch, C = d.codebooks, P = d.predicted, T = d.time, V = d.vocab;
  const int64_t Cc = C - P;
  const int64_t positions = B * P * T;
  const int64_t per_item = P * T;

  const StepConfig cfg = step_config(
      p, V, static_cast<double>(p.step) / static_cast<double>(p.num_steps) <= static_cast<double>(p.sample_cutoff));
  const float r = schedule_r(p.step, p.num_steps);
  const float noise_scale = p.mask_temperature * (1.0f - r);

  // Conditioning codebooks come from start_codes in both outputs.
  for (int64_t b = 0; b < B; ++b) {
    const int64_t off = b * C * T;
    std::copy(start_codes + off, start_codes + off + Cc * T, sampled + off);
    std::copy(start_codes + off, start_codes + off + Cc * T, next_codes + off);
  }

  // Phase 1: every (item, codebook, frame) position independently -> sampled token and confidence.
  std::vector<float> confidence(static_cast<size_t>(positions));
  std::vector<int32_t> errors(static_cast<size_t>(positions), 0);
  std::atomic<bool> any_error{false};
  const int64_t block = std::max<int64_t>(1, 16384 / V);
  parallel_blocks(par, positions, block, [&](int64_t begin, int64_t end) {
    Scratch scratch(V);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / per_item, pc = (i / T) % P, t = i % T;
      const int64_t code_index = (b * C + Cc + pc) * T + t;
      const int64_t current = codes[code_index];
      if (current != V) {
        sampled[code_index] = current;
        confidence[static_cast<size_t>(i)] = kInf;
        continue;
      }
      Draw draw{0, 0.f};
      const RowError e = sample_row(logits + i * V, V, cfg, p, uniforms[i], scratch, draw);
      if (e != RowError::kNone) {
        errors[static_cast<size_t>(i)] = static_cast<int32_t>(e);
        any_error.store(true, std::memory_order_relaxed);
        sampled[code_index] = 0;
        confidence[static_cast<size_t>(i)] = kInf;
        continue;
      }
      sampled[code_index] = draw.token;
      const float gumbel = -std::log(-std::log(uniforms[positions + i]));
      confidence[static_cast<size_t>(i)] = std::log(draw.prob) + noise_scale * gumbel;
    }
  });
  if (any_error.load()) {
    for (int64_t i = 0; i < positions; ++i) {
      if (errors[static_cast<size_t>(i)] == 0) continue;
      const int64_t b = i / per_item, pc = (i / T) % P, t = i % T;
      throw_row_error(static_cast<RowError>(errors[static_cast<size_t>(i)]),
                      "masked position (item " + std::to_string(b) + ", predicted codebook " + std::to_string(pc) +
                          ", frame " + std::to_string(t) + ")");
    }
  }

  // Phase 2: per item, the re-mask cut-off over its P*T confidences.
  parallel_blocks(par, B, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> sorted(static_cast<size_t>(per_item));
    for (int64_t b = begin; b < end; ++b) {
      int64_t masked_in_row = 0;
      for (int64_t pc = 0; pc < P; ++pc) {
        const int64_t* row = codes + (b * C + Cc + pc) * T;
        for (int64_t t = 0; t < T; ++t) masked_in_row += row[t] == V;
      }
      const int64_t k = schedule_num_to_mask(p.step, p.num_steps, n0[b], masked_in_row);
      const float* conf = confidence.data() + b * per_item;
      const float cutoff = remask_cutoff(conf, per_item, k, sorted.data());
      for (int64_t pc = 0; pc < P; ++pc) {
        const int64_t base = (b * C + Cc + pc) * T;
        for (int64_t t = 0; t < T; ++t) {
          next_codes[base + t] = conf[pc * T + t] < cutoff ? V : sampled[base + t];
        }
      }
    }
  });
}

}  // namespace vampnet
