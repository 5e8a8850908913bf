// PhiloxUniform: counter-based uniforms for one decode step.
//   seed int64 [] or [B], step int64 [], shape int64 [3] = (B, P, T)  ->  uniforms float [2, B, P, T]
// Philox4x32-10 (Salmon et al. 2011, Random123 constants). Item b uses seed s_b = seed[b] (seed of shape [B]) or
// seed + b (scalar seed, two's-complement wrap-around); key = (low 32 bits of s_b, high 32 bits of s_b);
// counter = (t, p, step, purpose) with purpose 0 = sampling draw, 1 = re-mask Gumbel noise.
// u = ((word0 >> 9) + 0.5) * 2^-23: exact in float32, strictly inside (0, 1).
#pragma once
#include <array>
#include <cstdint>

#include "common.h"
#include "op_contract.h"

struct OrtCustomOp;

namespace vampnet {

constexpr const char* kPhiloxUniform = contract::PhiloxUniform::kName;

struct PhiloxDims {
  int64_t batch = 0, predicted = 0, time = 0;
  bool per_item_seed = false;  // seed has shape [B]
};

// One Philox4x32-10 block.
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);
// The uniform a 32-bit word maps to.
inline float philox_word_to_uniform(uint32_t word) {
  return (static_cast<float>(word >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

// Validates seed/step/shape: the shapes first, then the values of step and shape (read only once their shapes are
// checked); throws vampnet::Error.
PhiloxDims philox_uniform_check(const Shape& seed, const Shape& step, const int64_t* step_values, const Shape& shape,
                                const int64_t* shape_values);
void philox_uniform(const int64_t* seed, int64_t step, const PhiloxDims& d, float* out, const Parallel& par);
const OrtCustomOp* philox_uniform_op();

}  // namespace vampnet
