// Entry point of the ONNX Runtime custom-op library: RegisterCustomOps adds the "vampnet" domain (version 1,
// every op of op_list.h) to the given session options.
#include <exception>

#include "onnxruntime_cxx_api.h"
#include "op_list.h"

namespace {

// ORT requires the domain to outlive every session that uses it. It is created once, on first registration,
// and deliberately never destroyed (destroying it at exit could run after ONNX Runtime itself is unloaded).
Ort::CustomOpDomain* shared_domain() {
  static Ort::CustomOpDomain* domain = [] {
    auto* d = new Ort::CustomOpDomain(vampnet::kDomain);
    for (const OrtCustomOp* op : vampnet::all_ops()) d->Add(op);
    return d;
  }();
  return domain;
}

}  // namespace

extern "C" VAMPNET_EXPORT OrtStatus* ORT_API_CALL
RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (api == nullptr) {
    // The runtime is older than the headers this library was built with; API version 1 can still report it.
    const OrtApi* v1 = api_base->GetApi(1);
    return v1 == nullptr ? nullptr
                         : v1->CreateStatus(ORT_FAIL,
                                            "vampnet ops: this ONNX Runtime is older than the API version "
                                            "the library was built for");
  }
  Ort::InitApi(api);
  try {
    Ort::UnownedSessionOptions session_options(options);
    session_options.Add(*shared_domain());
    return nullptr;
  } catch (const std::exception& e) {
    return api->CreateStatus(ORT_FAIL, e.what());
  }
}
