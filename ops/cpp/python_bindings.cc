// pybind11 module vampnet_ort._kernels: the same kernels as the ONNX Runtime library, on numpy arrays.
// Inputs are converted to C-contiguous arrays of the kernel's dtype; errors raise ValueError with the same
// messages the ORT path reports.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "codebook_embedding.h"
#include "film.h"
#include "relative_position_attention.h"
#include "rms_norm.h"

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

Array<int64_t> py_relative_position_buckets(int64_t t_query, int64_t t_key, int64_t num_buckets,
                                            int64_t max_distance) {
  if (t_query < 0 || t_key < 0) {
    throw vampnet::Error(vampnet::kRelativePositionAttention, "sequence lengths must be >= 0");
  }
  Array<int64_t> buckets = empty_like_shape<int64_t>({t_query, t_key});
  vampnet::relative_position_buckets(t_query, t_key, num_buckets, max_distance, buckets.mutable_data());
  return buckets;
}

}  // namespace

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "vampnet-ort kernels on numpy arrays (the same C++ code the ONNX Runtime op library runs)";
  py::register_exception<vampnet::Error>(m, "KernelError", PyExc_ValueError);
  m.def("rms_norm", &py_rms_norm, py::arg("x"), py::arg("scale"), py::arg("epsilon") = 1e-6f,
        py::arg("threads") = 1, "RMSNorm over the last axis: x * rsqrt(mean(x^2) + epsilon) * scale");
  m.def("film", &py_film, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("threads") = 1,
        "FiLM: x * (1 + gamma) + beta, gamma/beta [B or 1, D] broadcast over time");
  m.def("codebook_embedding", &py_codebook_embedding, py::arg("codes"), py::arg("tables"), py::arg("bias"),
        py::arg("threads") = 1, "bias + sum_c tables[c, codes[b, c, t]] -> [B, T, D]");
  m.def("relative_position_attention", &py_relative_position_attention, py::arg("qkv"), py::arg("rel_bias"),
        py::arg("num_heads"), py::arg("num_buckets") = 32, py::arg("max_distance") = 128, py::arg("threads") = 1,
        "multi-head self-attention with T5 relative-position bias: qkv [B, T, 3D], rel_bias [num_buckets, H] -> "
        "[B, T, D]");
  m.def("relative_position_buckets", &py_relative_position_buckets, py::arg("t_query"), py::arg("t_key"),
        py::arg("num_buckets") = 32, py::arg("max_distance") = 128,
        "T5 bidirectional bucket of key - query: int64 [t_query, t_key]");
}
