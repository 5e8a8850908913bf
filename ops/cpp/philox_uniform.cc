#include "philox_uniform.h"

#include <string>

#include "ort_op.h"

namespace vampnet {

namespace {
constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
constexpr int64_t kMaxCounterWord = int64_t{1} << 32;
}  // namespace

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
    k = {k[0] + kW0, k[1] + kW1};
  }
  return c;
}

PhiloxDims philox_uniform_check(const Shape& seed, const Shape& step, const int64_t* step_values, const Shape& shape,
                                const int64_t* shape_values) {
  const std::string op = kPhiloxUniform;
  // Shapes first: nothing is read from step_values / shape_values before their shapes are known to be right.
  check_scalar(op, "step", step);
  check_rank(op, "shape", shape, 1);
  check_dim(op, "shape", shape, 0, 3, "3 (B, P, T)");
  PhiloxDims d;
  d.batch = shape_values[0];
  d.predicted = shape_values[1];
  d.time = shape_values[2];
  for (int i = 0; i < 3; ++i) {
    check(shape_values[i] >= 0 && shape_values[i] < kMaxCounterWord, op,
          "input 'shape' values must be in [0, 2^32), got " + shape_str({shape_values[0], shape_values[1],
                                                                         shape_values[2]}));
  }
  constexpr int64_t kMaxElements = int64_t{1} << 40;
  check(d.batch == 0 || d.predicted == 0 || d.time == 0 ||
            (d.predicted <= kMaxElements / d.time && d.batch <= kMaxElements / (d.predicted * d.time)),
        op, "input 'shape' describes too many elements: " + shape_str({d.batch, d.predicted, d.time}));
  const int64_t step_value = step_values[0];
  check(step_value >= 0 && step_value < kMaxCounterWord, op,
        "input 'step' must be in [0, 2^32), got " + std::to_string(step_value));
  if (seed.size() == 0) {
    d.per_item_seed = false;
  } else {
    check(seed.size() == 1, op, "input 'seed' must have shape [] or [B], got " + shape_str(seed));
    check(seed[0] == d.batch, op,
          "input 'seed' has shape " + shape_str(seed) + " but shape[0] (B) is " + std::to_string(d.batch));
    d.per_item_seed = true;
  }
  return d;
}

void philox_uniform(const int64_t* seed, int64_t step, const PhiloxDims& d, float* out, const Parallel& par) {
  const int64_t per_item = d.predicted * d.time;
  const int64_t total = d.batch * per_item;
  const uint32_t step_word = static_cast<uint32_t>(step);
  parallel_blocks(par, total, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / per_item, p = (i / d.time) % d.predicted, t = i % d.time;
      // Two's-complement arithmetic without signed overflow.
      const uint64_t s = d.per_item_seed ? static_cast<uint64_t>(seed[b])
                                         : static_cast<uint64_t>(seed[0]) + static_cast<uint64_t>(b);
      const std::array<uint32_t, 2> key{static_cast<uint32_t>(s), static_cast<uint32_t>(s >> 32)};
      for (uint32_t purpose = 0; purpose < 2; ++purpose) {
        const auto w = philox4x32_10({static_cast<uint32_t>(t), static_cast<uint32_t>(p), step_word, purpose}, key);
        out[purpose * total + i] = philox_word_to_uniform(w[0]);
      }
    }
  });
}

namespace {
struct PhiloxUniformKernel : OrtKernel<PhiloxUniformKernel> {
  PhiloxUniformKernel(const OrtApi&, const OrtKernelInfo*) {}
  void Compute(Ort::KernelContext& ctx) {
    const InputView seed = get_input<contract::PhiloxUniform>(ctx, 0);
    const InputView step = get_input<contract::PhiloxUniform>(ctx, 1);
    const InputView shape = get_input<contract::PhiloxUniform>(ctx, 2);
    const PhiloxDims d =
        philox_uniform_check(seed.shape, step.shape, step.as<int64_t>(), shape.shape, shape.as<int64_t>());
    float* out = get_output<float>(ctx, 0, {2, d.batch, d.predicted, d.time});
    philox_uniform(seed.as<int64_t>(), step.as<int64_t>()[0], d, out, OrtParallel(ctx));
  }
};

// Name, input and output types: ops/contract.py (via the generated op_contract.h).
struct PhiloxUniformOp : OrtOp<PhiloxUniformOp, PhiloxUniformKernel, contract::PhiloxUniform> {};
}  // namespace

const OrtCustomOp* philox_uniform_op() {
  static const PhiloxUniformOp op;
  return &op;
}

}  // namespace vampnet
