// SampleAndRemask, the ONNX Runtime binding: reads the 14 inputs, validates, runs the step.
#include <array>

#include "ort_op.h"
#include "sample_and_remask.h"

namespace vampnet {

namespace {

using Contract = contract::SampleAndRemask;

template <typename T>
T scalar_input(Ort::KernelContext& ctx, size_t index) {
  const InputView v = get_input<Contract>(ctx, index);
  check_scalar(kSampleAndRemask, Contract::kInputNames[index], v.shape);
  return v.as<T>()[0];
}

struct SampleAndRemaskKernel : OrtKernel<SampleAndRemaskKernel> {
  SampleAndRemaskKernel(const OrtApi&, const OrtKernelInfo*) {}
  void Compute(Ort::KernelContext& ctx) {
    const InputView logits = get_input<Contract>(ctx, 0);
    const InputView codes = get_input<Contract>(ctx, 1);
    const InputView start_codes = get_input<Contract>(ctx, 2);
    const InputView n0 = get_input<Contract>(ctx, 3);
    SampleParams p;
    p.step = scalar_input<int64_t>(ctx, 4);
    p.num_steps = scalar_input<int64_t>(ctx, 5);
    const InputView uniforms = get_input<Contract>(ctx, 6);
    p.temperature = scalar_input<float>(ctx, 7);
    p.mask_temperature = scalar_input<float>(ctx, 8);
    p.top_p = scalar_input<float>(ctx, 9);
    p.top_k = scalar_input<int64_t>(ctx, 10);
    p.typical_mass = scalar_input<float>(ctx, 11);
    p.typical_min_tokens = scalar_input<int64_t>(ctx, 12);
    p.sample_cutoff = scalar_input<float>(ctx, 13);
    const SampleDims d =
        sample_and_remask_check_shapes(logits.shape, codes.shape, start_codes.shape, n0.shape, uniforms.shape);
    sample_and_remask_check_values(d, p, codes.as<int64_t>(), start_codes.as<int64_t>(), n0.as<int64_t>(),
                                   uniforms.as<float>());
    int64_t* next_codes = get_output<int64_t>(ctx, 0, codes.shape);
    int64_t* sampled = get_output<int64_t>(ctx, 1, codes.shape);
    sample_and_remask(logits.as<float>(), codes.as<int64_t>(), start_codes.as<int64_t>(), n0.as<int64_t>(),
                      uniforms.as<float>(), d, p, next_codes, sampled, OrtParallel(ctx));
  }
};

// Name, input and output types: ops/contract.py (via the generated op_contract.h).
struct SampleAndRemaskOp : OrtOp<SampleAndRemaskOp, SampleAndRemaskKernel, contract::SampleAndRemask> {};

}  // namespace

const OrtCustomOp* sample_and_remask_op() {
  static const SampleAndRemaskOp op;
  return &op;
}

}  // namespace vampnet
