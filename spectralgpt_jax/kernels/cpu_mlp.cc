// The transformer MLP's first matmul with its GELU fused in, for XLA:CPU, as XLA FFI handlers.
//
//   forward:   pre = x . w1 + b1,  h = gelu(pre)          x [M, K], w1 [K, N], b1 [N]
//   backward:  dpre = (g . w2^T) * gelu'(pre)             g [M, K], w2t [K, N], pre [M, N]
//
// (K is the model width, N the hidden width; the caller passes w2^T, a small copy.) XLA:CPU runs
// these as a matmul plus separate passes over the [M, N] hidden activations (bias, erf, and in
// the backward erf, exp and products), each streaming the 64 MiB decoder hidden state through
// memory; here they run on each 12 x 32 output tile while it is still in registers.
//
// The matmul is a packed, cache-blocked GEMM (the BLIS loop nest): N in chunks of kNc columns,
// K in blocks of kKc, the B block packed once per chunk into 32-column panels, A packed in kMc-row
// blocks of 12-row panels; each 12-row A panel stays in L1 while the 32-column B panels stream
// from L2 through a 12 x 32 register tile (24 accumulators, one broadcast per row and k).

#include <algorithm>
#include <cstdint>
#include <vector>

#include "simd.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using namespace spectralgpt_kernels;

constexpr int kMr = 12;         // rows of the register tile
constexpr int kNr = 2 * kLanes;  // columns of the register tile
constexpr int kKc = 512;        // k block: a 12-row A panel is 24 KiB, in L1
constexpr int kMc = 192;        // rows of A packed at a time (384 KiB, in L2)
constexpr int kNc = 512;        // columns of B packed at a time (1 MiB, in L2)

// erf(x) as x P(x^2) / Q(x^2) on [-4, 4] (+-1 beyond in float32); the rational approximation
// of Eigen's and XLA's float32 erf, within a few ulp.
inline vf Erf(vf x) {
  x = Max(Splat(-4.f), x);
  x = Select(x > Splat(4.f), Splat(4.f), x);
  const vf x2 = x * x;
  vf p = Splat(-2.72614225801306e-10f);
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  vf q = Splat(-1.45660718464996e-05f);
  q = q * x2 + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  return x * p / q;
}

constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// gelu(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), torch's exact GELU.
inline vf Gelu(vf x) { return 0.5f * x * (1.f + Erf(x * kSqrtHalf)); }

// d gelu / dx = Phi(x) + x phi(x).
inline vf GeluGrad(vf x) {
  return 0.5f * (1.f + Erf(x * kSqrtHalf)) + x * Exp(-0.5f * x * x) * kInvSqrt2Pi;
}

// Epilogues see each finished 16-wide piece of the product, (row i, column j, value, lanes n).
struct BiasGelu {  // pre = v + b, h = gelu(pre)
  const float* bias;
  float *pre, *h;
  int64_t ld;
  void operator()(int64_t i, int64_t j, vf v, int n) const {
    v += LoadN(bias + j, n);
    StoreN(pre + i * ld + j, v, n);
    StoreN(h + i * ld + j, Gelu(v), n);
  }
};

struct TimesGeluGrad {  // dpre = v * gelu'(pre)
  const float* pre;
  float* dpre;
  int64_t ld;
  void operator()(int64_t i, int64_t j, vf v, int n) const {
    StoreN(dpre + i * ld + j, v * GeluGrad(LoadN(pre + i * ld + j, n)), n);
  }
};

// Packs rows [i0, i0 + mc) x columns [k0, k0 + kc) of row-major a (row stride lda) into 12-row
// panels, each [kc][12] (k-major), zero-padding the rows past mc.
void PackA(const float* a, int64_t lda, int64_t i0, int mc, int64_t k0, int kc, float* dst) {
  for (int ib = 0; ib < mc; ib += kMr, dst += kMr * kc) {
    const int rows = std::min(kMr, mc - ib);
    for (int r = 0; r < kMr; ++r) {
      const float* src = a + (i0 + ib + r) * lda + k0;
      for (int k = 0; k < kc; ++k) dst[k * kMr + r] = r < rows ? src[k] : 0.f;
    }
  }
}

// Packs rows [k0, k0 + kc) x columns [j0, j0 + nc) of row-major b (row stride ldb) into
// 32-column panels, each [kc][32], zero-padding the columns past nc.
void PackB(const float* b, int64_t ldb, int64_t k0, int kc, int64_t j0, int nc, float* dst) {
  for (int jb = 0; jb < nc; jb += kNr, dst += kNr * kc) {
    const int cols = std::min(kNr, nc - jb);
    for (int k = 0; k < kc; ++k) {
      const float* src = b + (k0 + k) * ldb + j0 + jb;
      for (int u = 0; u < 2; ++u) {
        const int n = std::clamp(cols - u * kLanes, 0, kLanes);
        Store(dst + k * kNr + u * kLanes, n ? LoadN(src + u * kLanes, n) : vf{});
      }
    }
  }
}

// The 12 x 32 tile at (i, j): acc = A panel . B panel over one k block; added to the partial sum
// kept in c (row stride ldc) unless this is the first block; stored there, or on the last block
// handed to the epilogue. rows, cols: the valid part of the tile.
template <typename Epilogue>
void Tile(int kc, const float* __restrict ap, const float* __restrict bp, float* c, int64_t ldc,
          int64_t i, int64_t j, int rows, int cols, bool first, bool last, const Epilogue& epi) {
  vf acc[kMr][2];
  for (int r = 0; r < kMr; ++r) acc[r][0] = acc[r][1] = vf{};
  for (int k = 0; k < kc; ++k) {
    const vf b0 = Load(bp + k * kNr), b1 = Load(bp + k * kNr + kLanes);
    for (int r = 0; r < kMr; ++r) {
      const vf x = Splat(ap[k * kMr + r]);
      acc[r][0] += x * b0;
      acc[r][1] += x * b1;
    }
  }
  for (int r = 0; r < rows; ++r) {
    for (int u = 0; u < 2; ++u) {
      const int n = std::min(kLanes, cols - u * kLanes);
      if (n <= 0) break;
      float* cp = c + (i + r) * ldc + j + u * kLanes;
      vf v = acc[r][u];
      if (!first) v += LoadN(cp, n);
      if (last)
        epi(i + r, j + u * kLanes, v, n);
      else
        StoreN(cp, v, n);
    }
  }
}

// c[i0:i1, j0:j1] of c = a . b (a [M, K], b [K, N], row-major), finished by `epi`; c (row stride
// N) holds the partial sums between k blocks. ap, bp: packing scratch.
template <typename Epilogue>
void Rectangle(const float* a, const float* b, float* c, int64_t n_cols, int64_t k_dim,
               int64_t i0, int64_t i1, int64_t j0, int64_t j1, const Epilogue& epi,
               std::vector<float>& ap, std::vector<float>& bp) {
  for (int64_t jc = j0; jc < j1; jc += kNc) {
    const int nc = std::min<int64_t>(kNc, j1 - jc);
    for (int64_t k0 = 0; k0 < k_dim; k0 += kKc) {
      const int kc = std::min<int64_t>(kKc, k_dim - k0);
      PackB(b, n_cols, k0, kc, jc, nc, bp.data());
      for (int64_t ic = i0; ic < i1; ic += kMc) {
        const int mc = std::min<int64_t>(kMc, i1 - ic);
        PackA(a, k_dim, ic, mc, k0, kc, ap.data());
        for (int ib = 0; ib < mc; ib += kMr)
          for (int jb = 0; jb < nc; jb += kNr)
            Tile(kc, ap.data() + ib * kc, bp.data() + jb * kc, c, n_cols, ic + ib, jc + jb,
                 std::min(kMr, mc - ib), std::min(kNr, nc - jb), k0 == 0, k0 + kc >= k_dim, epi);
      }
    }
  }
}

// c = a . b finished by `epi`, split into column chunks of kNc (and row ranges where there are
// fewer chunks than threads) spread over XLA's intra-op pool.
template <typename Epilogue>
void Gemm(ffi::ThreadPool& pool, const float* a, const float* b, float* c, int64_t m, int64_t k,
          int64_t n, const Epilogue& epi) {
  const int64_t col_chunks = (n + kNc - 1) / kNc;
  const int64_t threads = std::max<int64_t>(1, pool.num_threads());
  const int64_t row_chunks = std::clamp<int64_t>(threads / col_chunks, 1, (m + kMr - 1) / kMr);
  const int64_t row_step = ((m + row_chunks - 1) / row_chunks + kMr - 1) / kMr * kMr;
  ParallelFor(pool, col_chunks * row_chunks, [=, &epi](int64_t t, std::vector<float>& scratch) {
    const int64_t i0 = (t / col_chunks) * row_step, j0 = (t % col_chunks) * kNc;
    if (i0 >= m) return;
    std::vector<float> ap((kMc + kMr) * kKc);
    scratch.resize((kNc + kNr) * kKc);
    Rectangle(a, b, c, n, k, i0, std::min(m, i0 + row_step), j0, std::min(n, j0 + kNc), epi, ap,
              scratch);
  });
}

// Shapes: x [.., K] flattened to [M, K]; w [K, N].
ffi::Error MatrixShape(const ffi::Buffer<ffi::F32>& x, const ffi::Buffer<ffi::F32>& w,
                       int64_t* m, int64_t* k, int64_t* n) {
  const auto xd = x.dimensions(), wd = w.dimensions();
  if (xd.size() < 1 || wd.size() != 2 || xd.back() != wd[0])
    return ffi::Error::InvalidArgument("fused MLP: expected x [..., K] and w [K, N]");
  *k = wd[0];
  *n = wd[1];
  *m = *k ? x.element_count() / *k : 0;
  return ffi::Error::Success();
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::Buffer<ffi::F32> b, ffi::ResultBuffer<ffi::F32> pre,
                   ffi::ResultBuffer<ffi::F32> h) {
  int64_t m, k, n;
  if (ffi::Error error = MatrixShape(x, w, &m, &k, &n); error.failure()) return error;
  if (static_cast<int64_t>(b.element_count()) != n)
    return ffi::Error::InvalidArgument("fused MLP: bias must be [N]");
  const BiasGelu epi{b.typed_data(), pre->typed_data(), h->typed_data(), n};
  Gemm(pool, x.typed_data(), w.typed_data(), pre->typed_data(), m, k, n, epi);
  return ffi::Error::Success();
}

ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> w2t,
                    ffi::Buffer<ffi::F32> pre, ffi::ResultBuffer<ffi::F32> dpre) {
  int64_t m, k, n;
  if (ffi::Error error = MatrixShape(g, w2t, &m, &k, &n); error.failure()) return error;
  if (static_cast<int64_t>(pre.element_count()) != m * n)
    return ffi::Error::InvalidArgument("fused MLP: pre must be [M, N]");
  const TimesGeluGrad epi{pre.typed_data(), dpre->typed_data(), n};
  Gemm(pool, g.typed_data(), w2t.typed_data(), dpre->typed_data(), m, k, n, epi);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(SpectralgptMlpForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(SpectralgptMlpBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
