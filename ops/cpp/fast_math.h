// Elementwise math shared by several kernels, written once for a scalar float and for GCC/clang float vectors.
#pragma once

#include "common.h"

namespace vampnet {

// Cephes expf core on an argument already clamped to [-87.34, 88.38]: range reduction x = n ln2 + r (n rounded
// with the 1.5 * 2^23 trick, branch-free) and the degree-6 polynomial for e^r (~1 ulp): `n` receives n (an
// integer-valued float), `y` receives e^r. (Outputs by reference: a function returning a 64-byte vector would have
// a different ABI in each target clone, GCC's -Wpsabi.) V is float or a vector of floats (the same operations, lane by lane), so the scalar
// exp of SampleAndRemask and the 16-lane exp of RelativePositionAttention round identically.
template <typename V>
VAMPNET_INLINE void cephes_exp_reduced(const V& xc, V& n, V& y) {
  n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  V r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  const V z = r * r;
  y = r * 1.9875691500e-4f + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
}

}  // namespace vampnet
