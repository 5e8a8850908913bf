// DynamicQuantizeIm2Col: ONNX DynamicQuantizeLinear of X (uint8; ONNX Runtime's CPU rounding, bit for bit) fused with
// the im2col of a 1-D convolution over channels-last X, the input of the int8 codec decoder's MatMulInteger.
//   X [B, L, C] float -> Y [B, L_out, kernel_size * C] uint8, Y_scale [] float, Y_zero_point [] uint8
//   Y[b, t, j*C + c] = q(X[b, t + j*dilation - padding, c]), the zero point where that index is outside [0, L);
//   L_out = L + 2*padding - dilation*(kernel_size - 1).
#pragma once
#include <cstdint>

#include "common.h"
#include "op_contract.h"

struct OrtCustomOp;

namespace vampnet {

constexpr const char* kDynamicQuantizeIm2Col = contract::DynamicQuantizeIm2Col::kName;

struct Im2ColDims {
  int64_t batch, channels, length;
  int64_t kernel_size, dilation, padding;
  int64_t out_length;  // L_out
};

// Validates the attributes (kernel_size >= 1, dilation >= 1, padding >= 0).
void dynamic_quantize_im2col_check_attributes(int64_t kernel_size, int64_t dilation, int64_t padding);
// Validates X's shape against the attributes (rank 3, no empty dim, L_out >= 1, sizes that fit memory).
Im2ColDims dynamic_quantize_im2col_check(const Shape& x, int64_t kernel_size, int64_t dilation, int64_t padding);
// Bytes of scratch dynamic_quantize_im2col needs (the quantized, padded X; none for a 1x1 conv without padding).
int64_t dynamic_quantize_im2col_scratch_bytes(const Im2ColDims& d);

struct QuantizationParams {
  float scale;
  uint8_t zero_point;
};
// ONNX Runtime's DynamicQuantizeLinear parameters for values in [min(0, lo), max(0, hi)].
QuantizationParams dynamic_quantization_params(float lo, float hi);

// Throws if X holds NaN or an infinity (no quantization scale exists then). `scratch` holds
// dynamic_quantize_im2col_scratch_bytes(d) bytes.
QuantizationParams dynamic_quantize_im2col(const float* x, uint8_t* y, uint8_t* scratch, const Im2ColDims& d,
                                           const Parallel& par);
const OrtCustomOp* dynamic_quantize_im2col_op();

}  // namespace vampnet
