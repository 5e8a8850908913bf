// Glue between vampnet kernels and ONNX Runtime's custom-op C++ API.
//
// An op is declared as `struct MyOp : vampnet::OrtOp<MyOp, MyKernel, contract::MyOp> {};`: its name and
// input/output types come from the contract (ops/contract.py, generated into op_contract.h). Its Kernel is
// constructed from (const OrtApi&, const OrtKernelInfo*) (attributes are read and validated there) and implements
// void Compute(Ort::KernelContext&). Exceptions thrown in either place become an OrtStatus carrying the message,
// so a bad input is reported by session.run() and never crashes the process.
#pragma once

#include <array>
#include <exception>
#include <string>
#include <vector>

#include "common.h"
#include "op_contract.h"
#include "onnxruntime_cxx_api.h"

namespace vampnet {

inline OrtStatusPtr to_status(const std::exception& e) {
  return Ort::GetApi().CreateStatus(ORT_INVALID_ARGUMENT, e.what());
}

template <typename Op, typename Kernel, typename Contract>
struct OrtOp : Ort::CustomOpBase<Op, Kernel, /*WithStatus=*/true> {
  const char* GetName() const { return Contract::kName; }
  size_t GetInputTypeCount() const { return Contract::kInputTypes.size(); }
  ONNXTensorElementDataType GetInputType(size_t i) const {
    return static_cast<ONNXTensorElementDataType>(Contract::kInputTypes.at(i));
  }
  size_t GetOutputTypeCount() const { return Contract::kOutputTypes.size(); }
  ONNXTensorElementDataType GetOutputType(size_t i) const {
    return static_cast<ONNXTensorElementDataType>(Contract::kOutputTypes.at(i));
  }

  OrtStatusPtr CreateKernelV2(const OrtApi& api, const OrtKernelInfo* info, void** kernel) const noexcept {
    try {
      *kernel = new Kernel(api, info);
      return nullptr;
    } catch (const std::exception& e) {
      return to_status(e);
    }
  }
};

// Base for kernels: ComputeV2 wraps Compute with exception-to-status conversion.
template <typename Derived>
struct OrtKernel {
  OrtStatusPtr ComputeV2(OrtKernelContext* context) noexcept {
    try {
      Ort::KernelContext ctx(context);
      static_cast<Derived*>(this)->Compute(ctx);
      return nullptr;
    } catch (const std::exception& e) {
      return to_status(e);
    }
  }
};

// Parallel backed by ORT's intra-op thread pool.
class OrtParallel final : public Parallel {
 public:
  explicit OrtParallel(const Ort::KernelContext& ctx) : ctx_(ctx) {}
  void run(size_t n, const std::function<void(size_t)>& fn) const override {
    if (n == 0) return;
    if (n == 1) {
      fn(0);
      return;
    }
    struct Payload {
      const std::function<void(size_t)>* fn;
    } payload{&fn};
    ctx_.ParallelFor(
        [](void* data, size_t i) { (*static_cast<Payload*>(data)->fn)(i); }, n, 0, &payload);
  }

 private:
  const Ort::KernelContext& ctx_;
};

// A read-only view of one input tensor and its shape. Its element type needs no check here: ORT matches every
// input's type against the op's kInputTypes before the kernel runs.
struct InputView {
  const void* data = nullptr;
  Shape shape;

  template <typename T>
  const T* as() const {
    return static_cast<const T*>(data);
  }
};

inline InputView get_input(const Ort::KernelContext& ctx, size_t index, const std::string& op, const char* name) {
  if (index >= ctx.GetInputCount()) throw Error(op, std::string("missing input '") + name + "'");
  Ort::ConstValue v = ctx.GetInput(index);
  if (v == nullptr) throw Error(op, std::string("missing input '") + name + "'");
  if (!v.IsTensor()) throw Error(op, std::string("input '") + name + "' must be a tensor");
  auto info = v.GetTensorTypeAndShapeInfo();
  InputView out;
  out.shape = info.GetShape();
  for (int64_t d : out.shape) {
    if (d < 0) throw Error(op, std::string("input '") + name + "' has a negative dimension");
  }
  out.data = v.GetTensorRawData();
  return out;
}

// Input `index` of the op whose contract is `Contract` (errors name the op and the input).
template <typename Contract>
InputView get_input(const Ort::KernelContext& ctx, size_t index) {
  return get_input(ctx, index, Contract::kName, Contract::kInputNames.at(index));
}

template <typename T>
T* get_output(Ort::KernelContext& ctx, size_t index, const Shape& shape) {
  Ort::UnownedValue v = ctx.GetOutput(index, shape);
  return v.GetTensorMutableData<T>();
}

// Scratch memory from the kernel context's CPU allocator (an arena by default, so repeated runs reuse it instead of
// page-faulting fresh memory every call), returned on scope exit.
class OrtWorkspace {
 public:
  OrtWorkspace(const Ort::KernelContext& ctx, size_t bytes, const std::string& op) {
    if (bytes == 0) return;
    const Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    allocator_ = ctx.GetAllocator(*static_cast<const OrtMemoryInfo*>(cpu));
    data_ = allocator_->Alloc(allocator_, bytes);
    if (data_ == nullptr) {
      Ort::GetApi().ReleaseAllocator(allocator_);
      throw Error(op, "out of memory allocating a " + std::to_string(bytes) + "-byte workspace");
    }
  }
  ~OrtWorkspace() {
    if (allocator_ != nullptr) {
      if (data_ != nullptr) allocator_->Free(allocator_, data_);
      Ort::GetApi().ReleaseAllocator(allocator_);
    }
  }
  OrtWorkspace(const OrtWorkspace&) = delete;
  OrtWorkspace& operator=(const OrtWorkspace&) = delete;

  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  OrtAllocator* allocator_ = nullptr;
  void* data_ = nullptr;
};

// Attribute helpers: a missing attribute takes the default; a present attribute of the wrong type is an error.
namespace detail {
inline bool attr_missing(const OrtApi& api, OrtStatus* status) {
  const std::string message = api.GetErrorMessage(status);
  return message.find("No attribute with name") != std::string::npos ||
         message.find("No attribute with this name") != std::string::npos;
}
}  // namespace detail

inline int64_t attr_int(const OrtApi& api, const OrtKernelInfo* info, const std::string& op, const char* name,
                        int64_t fallback) {
  int64_t value = 0;
  OrtStatus* status = api.KernelInfoGetAttribute_int64(info, name, &value);
  if (status == nullptr) return value;
  const bool missing = detail::attr_missing(api, status);
  api.ReleaseStatus(status);
  if (missing) return fallback;
  throw Error(op, std::string("attribute '") + name + "' must be an int");
}

inline float attr_float(const OrtApi& api, const OrtKernelInfo* info, const std::string& op, const char* name,
                        float fallback) {
  float value = 0.f;
  OrtStatus* status = api.KernelInfoGetAttribute_float(info, name, &value);
  if (status == nullptr) return value;
  const bool missing = detail::attr_missing(api, status);
  api.ReleaseStatus(status);
  if (missing) return fallback;
  throw Error(op, std::string("attribute '") + name + "' must be a float");
}

}  // namespace vampnet
