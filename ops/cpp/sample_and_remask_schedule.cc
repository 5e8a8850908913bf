// SampleAndRemask, the re-mask schedule: r, gamma(r) = cos(r pi / 2) in float32 as upstream computes it, and the
// number of positions to re-mask.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "sample_and_remask.h"

namespace vampnet {

namespace {
constexpr float kPi = 3.14159265358979323846f;
}  // namespace

float schedule_r(int64_t step, int64_t num_steps) {
  return static_cast<float>(step + 1) / static_cast<float>(num_steps);
}

namespace {

// Double-float helpers (a value as an unevaluated sum hi + lo of two floats).
struct Float2 {
  float hi, lo;
};
inline Float2 two_sum(float x, float y) {  // exact x + y
  const float s = x + y;
  const float v = s - x;
  return {s, (x - (s - v)) + (y - v)};
}
inline Float2 add2(Float2 x, float y) {
  const float s = x.hi + y;
  const float v = s - x.hi;
  return {s, ((x.hi - (s - v)) + (y - v)) + x.lo};
}
inline Float2 fast_add(float x, float y) {  // |x| >= |y|
  const float s = x + y;
  return {s, (x - s) + y};
}
inline Float2 fast_add(float x, Float2 y) {  // |x| >= |y|
  const float s = x + y.hi;
  return {s, ((x - s) + y.hi) + y.lo};
}
inline Float2 square(Float2 x) {
  const float s = x.hi * x.hi;
  return {s, std::fma(x.hi + x.hi, x.lo, std::fma(x.hi, x.hi, -s))};
}
inline Float2 mul(Float2 x, Float2 y) {
  const float s = x.hi * y.hi;
  return {s, std::fma(x.hi, y.lo, std::fma(x.lo, y.hi, std::fma(x.hi, y.hi, -s)))};
}
inline float mul_to_float(Float2 x, Float2 y) {
  return std::fma(x.hi, y.hi, std::fma(x.lo, y.hi, x.hi * y.lo));
}

}  // namespace

// cos(d) for |d| < 125 in float32 with fused multiply-adds, reduced around the nearest odd multiple of pi/2 and
// evaluated in double-float arithmetic (the algorithm of SLEEF's 1-ulp cosf). torch's CPU cos is not correctly
// rounded; this reproduces every schedule in golden/sampling.npz bit for bit and 97% of torch's values over all
// (step, S < 200), where the correctly rounded cosine gets 95% (see docs/SAMPLING.md).
float schedule_cos(float d) {
  const float dq = std::fma(std::nearbyint(std::fma(d, 0.318309886183790671538f, -0.5f)), 2.0f, 1.0f);
  const int32_t q = static_cast<int32_t>(dq);
  Float2 s = two_sum(d, dq * -1.57073974609375f);      // -pi_a / 2
  s = add2(s, dq * -5.657970905303955078e-05f);         // -pi_b / 2
  s = add2(s, dq * -9.920936294705029468e-10f);         // -pi_c / 2
  const Float2 t = s;
  const Float2 s2 = square(s);
  float u = std::fma(2.6083159809786593541503e-06f, s2.hi, -0.0001981069071916863322258f);
  u = std::fma(u, s2.hi, 0.00833307858556509017944336f);
  const Float2 x = fast_add(1.0f, mul(fast_add(-0.166666597127914428710938f, u * s2.hi), s2));
  const float r = mul_to_float(t, x);
  return (q & 2) == 0 ? -r : r;
}

float schedule_gamma(float r) {
  // cos(r * pi / 2) with every product rounded to float32 as upstream does, clamped to [1e-10, 1].
  const float angle = (r * kPi) / 2.0f;
  return std::min(std::max(schedule_cos(angle), 1e-10f), 1.0f);
}

int64_t schedule_num_to_mask(int64_t step, int64_t num_steps, int64_t n0, int64_t masked_in_row) {
  const float gamma = schedule_gamma(schedule_r(step, num_steps));
  int64_t k = static_cast<int64_t>(std::floor(gamma * static_cast<float>(n0)));
  if (step != num_steps - 1) k = std::max<int64_t>(1, std::min<int64_t>(masked_in_row - 1, k));
  return k;
}

}  // namespace vampnet
