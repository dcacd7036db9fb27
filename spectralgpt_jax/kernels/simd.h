// SIMD helpers and the thread-pool loop shared by the XLA:CPU kernels of this package.
//
// SIMD is written with GCC vector extensions (16 floats: one AVX-512 register, two AVX2 ones),
// so the compiler emits the machine's widest FMA code with -march=native.

#ifndef SPECTRALGPT_JAX_KERNELS_SIMD_H_
#define SPECTRALGPT_JAX_KERNELS_SIMD_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace spectralgpt_kernels {

namespace ffi = xla::ffi;

constexpr int kLanes = 16;
typedef float vf __attribute__((vector_size(64)));
typedef float vf_unaligned __attribute__((vector_size(64), aligned(4)));
typedef int32_t vi __attribute__((vector_size(64)));

inline vf Load(const float* p) { return *reinterpret_cast<const vf_unaligned*>(p); }
inline void Store(float* p, vf x) { *reinterpret_cast<vf_unaligned*>(p) = x; }
// (Not `vf{} + x`: that adds 0.0f first, which the compiler must keep, and broadcasts through a
// shuffle port that the FMAs need; this form broadcasts straight from memory.)
inline vf Splat(float x) { return vf{x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
inline vf Select(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

inline float HorizontalSum(vf x) {
  float s = 0.f;
  for (int i = 0; i < kLanes; ++i) s += x[i];
  return s;
}

inline float HorizontalMax(vf x) {
  float m = x[0];
  for (int i = 1; i < kLanes; ++i) m = std::max(m, x[i]);
  return m;
}

// exp(x) for x <= ~0 (softmax arguments: s - max, s - lse): 2^n * e^r with n = round(x / ln 2),
// |r| <= ln2 / 2, and a degree-6 polynomial for e^r (Cephes' expf coefficients, ~1 ulp);
// exactly 0 below -87.3 (never a denormal, which would slow the matmuls that read it).
inline vf Exp(vf x) {
  const vf lowest = Splat(-87.33654f);
  const vi underflow = x < lowest;
  x = Select(underflow, lowest, x);
  const vf n_shifted = x * 1.44269504088896341f + 12582912.0f;  // + 1.5 * 2^23 rounds
  const vf n = n_shifted - 12582912.0f;
  vf r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  vf p = Splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const vi n_int = (vi)n_shifted - (vi)Splat(12582912.0f);
  return (vf)((vi)(p * (vf)((n_int + 127) << 23)) & ~underflow);
}

inline vf Max(vf a, vf b) { return Select(a > b, a, b); }

// Runs work(i, scratch) for i in [0, count) on the caller and the pool's other threads. Tasks
// that start after the work is gone only touch the shared counters, which they keep alive.
template <typename Work>
void ParallelFor(ffi::ThreadPool& pool, int64_t count, Work work) {
  struct Counters {
    std::atomic<int64_t> next{0}, done{0};
  };
  auto counters = std::make_shared<Counters>();
  auto worker = [counters, count, work]() {
    std::vector<float> scratch;
    for (int64_t i; (i = counters->next.fetch_add(1)) < count;) {
      work(i, scratch);
      counters->done.fetch_add(1, std::memory_order_release);
    }
  };
  const int64_t helpers = std::min<int64_t>(pool.num_threads(), count) - 1;
  for (int64_t t = 0; t < helpers; ++t) pool.Schedule([worker] { worker(); });
  worker();
  while (counters->done.load(std::memory_order_acquire) < count) std::this_thread::yield();
}

}  // namespace spectralgpt_kernels

#endif  // SPECTRALGPT_JAX_KERNELS_SIMD_H_
