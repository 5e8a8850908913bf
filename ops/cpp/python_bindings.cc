// pybind11 module vampnet_ort._kernels: the same kernels as the ONNX Runtime library, on numpy arrays.
// Inputs are converted to C-contiguous arrays of the kernel's dtype; errors raise ValueError with the same
// messages the ORT path reports.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <thread>
#include <vector>

#include "onnxruntime_c_api.h"
#include "op_list.h"
#include "codebook_embedding.h"
#include "dynamic_quantize_im2col.h"
#include "snake.h"
#include "film.h"
#include "philox_uniform.h"
#include "relative_position_attention.h"
#include "relative_position_attention_int8.h"
#include "rms_norm.h"
#include "sample_and_remask.h"

namespace py = pybind11;

namespace {

using vampnet::Shape;

template <typename T>
using Array = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <typename T>
Shape shape_of(const Array<T>& a) {
  return Shape(a.shape(), a.shape() + a.ndim());
}

template <typename T>
Array<T> empty_like_shape(const Shape& s) {
  return Array<T>(std::vector<py::ssize_t>(s.begin(), s.end()));
}

// Parallel backed by short-lived std::threads (the numpy path has no ORT thread pool).
class ThreadParallel final : public vampnet::Parallel {
 public:
  explicit ThreadParallel(int threads) : threads_(std::max(1, threads)) {}
  void run(size_t n, const std::function<void(size_t)>& fn) const override {
    const size_t workers = std::min<size_t>(static_cast<size_t>(threads_), n);
    if (workers <= 1) {
      for (size_t i = 0; i < n; ++i) fn(i);
      return;
    }
    std::vector<std::thread> pool;
    pool.reserve(workers);
    for (size_t w = 0; w < workers; ++w) {
      pool.emplace_back([&, w] {
        for (size_t i = w; i < n; i += workers) fn(i);
      });
    }
    for (auto& t : pool) t.join();
  }

 private:
  int threads_;
};

Array<float> py_rms_norm(const Array<float>& x, const Array<float>& scale, float epsilon, int threads) {
  const Shape xs = shape_of(x);
  const int64_t rows = vampnet::rms_norm_check(xs, shape_of(scale));
  Array<float> y = empty_like_shape<float>(xs);
  {
    py::gil_scoped_release release;
    vampnet::rms_norm(x.data(), scale.data(), y.mutable_data(), rows, xs.back(), epsilon, ThreadParallel(threads));
  }
  return y;
}

Array<float> py_film(const Array<float>& x, const Array<float>& gamma, const Array<float>& beta, int threads) {
  const Shape xs = shape_of(x);
  const vampnet::FiLMDims d = vampnet::film_check(xs, shape_of(gamma), shape_of(beta));
  Array<float> y = empty_like_shape<float>(xs);
  {
    py::gil_scoped_release release;
    vampnet::film(x.data(), gamma.data(), beta.data(), y.mutable_data(), d, ThreadParallel(threads));
  }
  return y;
}

Array<float> py_codebook_embedding(const Array<int64_t>& codes, const Array<float>& tables, const Array<float>& bias,
                                   int threads) {
  const vampnet::EmbeddingDims d =
      vampnet::codebook_embedding_check(shape_of(codes), shape_of(tables), shape_of(bias));
  vampnet::codebook_embedding_check_codes(codes.data(), d);
  Array<float> y = empty_like_shape<float>({d.batch, d.time, d.dim});
  {
    py::gil_scoped_release release;
    vampnet::codebook_embedding(codes.data(), tables.data(), bias.data(), y.mutable_data(), d,
                                ThreadParallel(threads));
  }
  return y;
}

Array<float> py_philox_uniform(const Array<int64_t>& seed, int64_t step, const Array<int64_t>& shape, int threads) {
  const vampnet::PhiloxDims d = vampnet::philox_uniform_check(shape_of(seed), {}, &step, shape_of(shape), shape.data());
  Array<float> out = empty_like_shape<float>({2, d.batch, d.predicted, d.time});
  {
    py::gil_scoped_release release;
    vampnet::philox_uniform(seed.data(), step, d, out.mutable_data(), ThreadParallel(threads));
  }
  return out;
}

std::array<uint32_t, 4> py_philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key) {
  return vampnet::philox4x32_10(counter, key);
}

// The one place that turns the Python arguments into SampleParams (step settings default to a single last step).
vampnet::SampleParams sample_params(float temperature, float top_p, int64_t top_k, float typical_mass,
                                    int64_t typical_min_tokens, float mask_temperature = 0.f, int64_t step = 0,
                                    int64_t num_steps = 1, float sample_cutoff = -1.f) {
  vampnet::SampleParams p;
  p.step = step;
  p.num_steps = num_steps;
  p.temperature = temperature;
  p.mask_temperature = mask_temperature;
  p.top_p = top_p;
  p.top_k = top_k;
  p.typical_mass = typical_mass;
  p.typical_min_tokens = typical_min_tokens;
  p.sample_cutoff = sample_cutoff;
  return p;
}

py::tuple py_sample_and_remask(const Array<float>& logits, const Array<int64_t>& codes,
                               const Array<int64_t>& start_codes, const Array<int64_t>& n0, int64_t step,
                               int64_t num_steps, const Array<float>& uniforms, float temperature,
                               float mask_temperature, float top_p, int64_t top_k, float typical_mass,
                               int64_t typical_min_tokens, float sample_cutoff, int threads) {
  const vampnet::SampleDims d = vampnet::sample_and_remask_check_shapes(
      shape_of(logits), shape_of(codes), shape_of(start_codes), shape_of(n0), shape_of(uniforms));
  const vampnet::SampleParams p = sample_params(temperature, top_p, top_k, typical_mass, typical_min_tokens,
                                                mask_temperature, step, num_steps, sample_cutoff);
  vampnet::sample_and_remask_check_values(d, p, codes.data(), start_codes.data(), n0.data(), uniforms.data());
  const vampnet::Shape cs = shape_of(codes);
  Array<int64_t> next_codes = empty_like_shape<int64_t>(cs);
  Array<int64_t> sampled = empty_like_shape<int64_t>(cs);
  {
    py::gil_scoped_release release;
    vampnet::sample_and_remask(logits.data(), codes.data(), start_codes.data(), n0.data(), uniforms.data(), d, p,
                               next_codes.mutable_data(), sampled.mutable_data(), ThreadParallel(threads));
  }
  return py::make_tuple(next_codes, sampled);
}

vampnet::Shape check_rows(const Array<float>& logits) {
  const vampnet::Shape s = shape_of(logits);
  vampnet::check_rank(vampnet::kSampleAndRemask, "logits", s, 2);
  vampnet::check(s[1] >= 1, vampnet::kSampleAndRemask, "input 'logits' needs V >= 1");
  return s;
}

Array<float> py_filter_rows(const Array<float>& logits, float top_p, int64_t top_k, float typical_mass,
                            int64_t typical_min_tokens) {
  const vampnet::Shape s = check_rows(logits);
  Array<float> out = empty_like_shape<float>(s);
  vampnet::filter_rows(logits.data(), s[0], s[1], sample_params(1.f, top_p, top_k, typical_mass, typical_min_tokens),
                       out.mutable_data());
  return out;
}

py::tuple py_sample_rows(const Array<float>& logits, const Array<float>& uniforms, float temperature, float top_p,
                         int64_t top_k, float typical_mass, int64_t typical_min_tokens, bool sample) {
  const vampnet::Shape s = check_rows(logits);
  vampnet::check(shape_of(uniforms) == vampnet::Shape{s[0]}, vampnet::kSampleAndRemask,
                 "input 'uniforms' must have shape [rows]");
  Array<int64_t> tokens = empty_like_shape<int64_t>({s[0]});
  Array<float> probs = empty_like_shape<float>({s[0]});
  vampnet::sample_rows(logits.data(), s[0], s[1],
                       sample_params(temperature, top_p, top_k, typical_mass, typical_min_tokens), sample,
                       uniforms.data(), tokens.mutable_data(), probs.mutable_data());
  return py::make_tuple(tokens, probs);
}

py::array_t<bool> py_remask_rows(const Array<float>& confidence, const Array<int64_t>& num_to_mask) {
  const vampnet::Shape s = shape_of(confidence);
  vampnet::check_rank(vampnet::kSampleAndRemask, "confidence", s, 2);
  vampnet::check(shape_of(num_to_mask) == vampnet::Shape{s[0]}, vampnet::kSampleAndRemask,
                 "input 'num_to_mask' must have shape [rows]");
  py::array_t<bool> out(std::vector<py::ssize_t>{s[0], s[1]});
  bool* o = out.mutable_data();
  std::vector<float> scratch(static_cast<size_t>(s[1]));
  for (int64_t r = 0; r < s[0]; ++r) {
    const float* c = confidence.data() + r * s[1];
    const float cutoff = vampnet::remask_cutoff(c, s[1], num_to_mask.data()[r], scratch.data());
    for (int64_t j = 0; j < s[1]; ++j) o[r * s[1] + j] = c[j] < cutoff;
  }
  return out;
}

Array<float> py_relative_position_attention(const Array<float>& qkv, const Array<float>& rel_bias, int64_t num_heads,
                                           int64_t num_buckets, int64_t max_distance, int threads) {
  const vampnet::AttentionDims d = vampnet::relative_position_attention_check(shape_of(qkv), shape_of(rel_bias),
                                                                              num_heads, num_buckets, max_distance);
  Array<float> out = empty_like_shape<float>({d.batch, d.time, d.dim});
  {
    py::gil_scoped_release release;
    vampnet::relative_position_attention(qkv.data(), rel_bias.data(), out.mutable_data(), d,
                                         ThreadParallel(threads));
  }
  return out;
}

Array<float> py_relative_position_attention_int8(const Array<float>& qkv, const Array<float>& rel_bias,
                                                int64_t num_heads, int64_t num_buckets, int64_t max_distance,
                                                int threads, bool allow_vnni) {
  const vampnet::AttentionDims d = vampnet::relative_position_attention_int8_check(
      shape_of(qkv), shape_of(rel_bias), num_heads, num_buckets, max_distance);
  Array<float> out = empty_like_shape<float>({d.batch, d.time, d.dim});
  {
    py::gil_scoped_release release;
    vampnet::relative_position_attention_int8(qkv.data(), rel_bias.data(), out.mutable_data(), d,
                                              ThreadParallel(threads), allow_vnni);
  }
  return out;
}

Array<int64_t> py_relative_position_buckets(int64_t t_query, int64_t t_key, int64_t num_buckets,
                                            int64_t max_distance) {
  if (t_query < 0 || t_key < 0) {
    throw vampnet::Error(vampnet::kRelativePositionAttention, "sequence lengths must be >= 0");
  }
  Array<int64_t> buckets = empty_like_shape<int64_t>({t_query, t_key});
  vampnet::relative_position_buckets(t_query, t_key, num_buckets, max_distance, buckets.mutable_data());
  return buckets;
}

Array<float> py_snake(const Array<float>& x, const Array<float>& alpha, int64_t channels_last, int threads) {
  vampnet::snake_check_attributes(channels_last);
  const Shape xs = shape_of(x);
  const vampnet::SnakeDims d = vampnet::snake_check(xs, shape_of(alpha), channels_last == 1);
  Array<float> y = empty_like_shape<float>(xs);
  {
    py::gil_scoped_release release;
    vampnet::snake(x.data(), alpha.data(), y.mutable_data(), d, ThreadParallel(threads));
  }
  return y;
}

py::tuple py_dynamic_quantize_im2col(const Array<float>& x, int64_t kernel_size, int64_t dilation, int64_t padding,
                                     int threads) {
  const vampnet::Im2ColDims d = vampnet::dynamic_quantize_im2col_check(shape_of(x), kernel_size, dilation, padding);
  Array<uint8_t> y = empty_like_shape<uint8_t>({d.batch, d.out_length, d.kernel_size * d.channels});
  std::vector<uint8_t> scratch(static_cast<size_t>(vampnet::dynamic_quantize_im2col_scratch_bytes(d)));
  vampnet::QuantizationParams qp{};
  {
    py::gil_scoped_release release;
    qp = vampnet::dynamic_quantize_im2col(x.data(), y.mutable_data(), scratch.data(), d, ThreadParallel(threads));
  }
  return py::make_tuple(y, py::array_t<float>(std::vector<py::ssize_t>{}, &qp.scale),
                        py::array_t<uint8_t>(std::vector<py::ssize_t>{}, &qp.zero_point));
}

// (name, input element types, output element types) of every op the ORT library registers (op_list.h), as ORT
// sees them through the OrtCustomOp interface; tests compare this with ops/contract.py.
py::list py_native_ops() {
  py::list ops;
  for (const OrtCustomOp* op : vampnet::all_ops()) {
    std::vector<int> inputs, outputs;
    for (size_t i = 0; i < op->GetInputTypeCount(op); ++i) inputs.push_back(static_cast<int>(op->GetInputType(op, i)));
    for (size_t i = 0; i < op->GetOutputTypeCount(op); ++i) {
      outputs.push_back(static_cast<int>(op->GetOutputType(op, i)));
    }
    ops.append(py::make_tuple(std::string(op->GetName(op)), inputs, outputs));
  }
  return ops;
}

}  // namespace

PYBIND11_MODULE(_kernels, m) {
  using Attention = vampnet::contract::RelativePositionAttention;
  m.doc() = "vampnet-ort kernels on numpy arrays (the same C++ code the ONNX Runtime op library runs)";
  py::register_exception<vampnet::Error>(m, "KernelError", PyExc_ValueError);
  m.attr("DOMAIN") = vampnet::kDomain;
  m.def("native_ops", &py_native_ops, "(name, input types, output types) of every op the ORT library registers");
  m.def("rms_norm", &py_rms_norm, py::arg("x"), py::arg("scale"), py::arg("epsilon") = vampnet::contract::RMSNorm::kEpsilon,
        py::arg("threads") = 1, "RMSNorm over the last axis: x * rsqrt(mean(x^2) + epsilon) * scale");
  m.def("film", &py_film, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("threads") = 1,
        "FiLM: x * (1 + gamma) + beta, gamma/beta [B or 1, D] broadcast over time");
  m.def("codebook_embedding", &py_codebook_embedding, py::arg("codes"), py::arg("tables"), py::arg("bias"),
        py::arg("threads") = 1, "bias + sum_c tables[c, codes[b, c, t]] -> [B, T, D]");
  m.def("snake", &py_snake, py::arg("x"), py::arg("alpha"),
        py::arg("channels_last") = vampnet::contract::Snake::kChannelsLast, py::arg("threads") = 1,
        "Snake: x + sin^2(alpha x) / (alpha + 1e-9), x [B, C, L], alpha [1, C, 1] or [C] (channels_last=1: "
        "x [B, L, C], alpha [1, 1, C] or [C])");
  m.def("philox_uniform", &py_philox_uniform, py::arg("seed"), py::arg("step"), py::arg("shape"),
        py::arg("threads") = 1, "Philox4x32-10 uniforms [2, B, P, T] for one decode step (see PhiloxUniform)");
  m.def("philox4x32_10", &py_philox4x32_10, py::arg("counter"), py::arg("key"),
        "one Philox4x32-10 block: 4 counter words, 2 key words -> 4 words");
  m.def("sample_and_remask", &py_sample_and_remask, py::arg("logits"), py::arg("codes"), py::arg("start_codes"),
        py::arg("n0"), py::arg("step"), py::arg("num_steps"), py::arg("uniforms"), py::arg("temperature"),
        py::arg("mask_temperature"), py::arg("top_p"), py::arg("top_k"), py::arg("typical_mass"),
        py::arg("typical_min_tokens"), py::arg("sample_cutoff"), py::arg("threads") = 1,
        "one decode step -> (next_codes, sampled) (see SampleAndRemask)");
  m.def("schedule_gamma", [](int64_t step, int64_t num_steps) {
        return vampnet::schedule_gamma(vampnet::schedule_r(step, num_steps)); }, py::arg("step"), py::arg("num_steps"),
        "gamma((step + 1) / num_steps) in float32");
  m.def("schedule_num_to_mask", &vampnet::schedule_num_to_mask, py::arg("step"), py::arg("num_steps"), py::arg("n0"),
        py::arg("masked_in_row"), "number of positions to re-mask at this step");
  m.def("filter_rows", &py_filter_rows, py::arg("logits"), py::arg("top_p"), py::arg("top_k"),
        py::arg("typical_mass"), py::arg("typical_min_tokens"),
        "typical, top-k and top-p filtering of logits [rows, V] as SampleAndRemask applies them (-inf = removed)");
  m.def("sample_rows", &py_sample_rows, py::arg("logits"), py::arg("uniforms"), py::arg("temperature"),
        py::arg("top_p"), py::arg("top_k"), py::arg("typical_mass"), py::arg("typical_min_tokens"), py::arg("sample"),
        "token and its probability per row of logits [rows, V], as SampleAndRemask chooses them");
  m.def("remask_rows", &py_remask_rows, py::arg("confidence"), py::arg("num_to_mask"),
        "re-mask rule: confidence [rows, n] strictly below the k-th smallest (0-based) of its row");
  m.def("relative_position_attention", &py_relative_position_attention, py::arg("qkv"), py::arg("rel_bias"),
        py::arg("num_heads"), py::arg("num_buckets") = Attention::kNumBuckets, py::arg("max_distance") = Attention::kMaxDistance, py::arg("threads") = 1,
        "multi-head self-attention with T5 relative-position bias: qkv [B, T, 3D], rel_bias [num_buckets, H] -> "
        "[B, T, D]");
  m.def("relative_position_attention_int8", &py_relative_position_attention_int8, py::arg("qkv"),
        py::arg("rel_bias"), py::arg("num_heads"), py::arg("num_buckets") = Attention::kNumBuckets,
        py::arg("max_distance") = Attention::kMaxDistance, py::arg("threads") = 1, py::arg("allow_vnni") = true,
        "RelativePositionAttention with int8 QK^T and PV (see RelativePositionAttentionInt8); allow_vnni=False "
        "forces the portable path");
  m.def("attention_int8_has_vnni", &vampnet::attention_int8_has_vnni,
        "whether RelativePositionAttentionInt8 runs its AVX-512 VNNI path on this CPU");
  using Im2Col = vampnet::contract::DynamicQuantizeIm2Col;
  m.def("dynamic_quantize_im2col", &py_dynamic_quantize_im2col, py::arg("x"),
        py::arg("kernel_size") = Im2Col::kKernelSize, py::arg("dilation") = Im2Col::kDilation,
        py::arg("padding") = Im2Col::kPadding, py::arg("threads") = 1,
        "DynamicQuantizeLinear of channels-last x [B, L, C] fused with a conv im2col -> (y uint8 "
        "[B, L_out, kernel_size * C], scale, zero_point) (see DynamicQuantizeIm2Col)");
  m.def("relative_position_buckets", &py_relative_position_buckets, py::arg("t_query"), py::arg("t_key"),
        py::arg("num_buckets") = Attention::kNumBuckets, py::arg("max_distance") = Attention::kMaxDistance,
        "T5 bidirectional bucket of key - query: int64 [t_query, t_key]");
}
