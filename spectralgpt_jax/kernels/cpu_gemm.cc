// float32 GEMM for XLA:CPU through a BLAS library's cblas_sgemm, as an XLA FFI handler.
//
// The BLAS (Intel MKL from the `mkl` wheel by default, see cpu_gemm.py) is loaded at run time
// with spectralgpt_load_blas and put in single-threaded mode; the handler splits each product
// into one panel per thread of XLA's intra-op pool, so the BLAS never starts threads of its own
// beside XLA's. c [m, n] = op(a) op(b), row-major, where op(a) is a [m, k] or a^T for a [k, m]
// (trans_a), and op(b) is b [k, n] or b^T for b [n, k] (trans_b).

#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "simd.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using namespace spectralgpt_kernels;

// cblas_sgemm's signature with its enums as ints (CblasRowMajor 101, NoTrans 111, Trans 112).
using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                       float, float*, int);
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
constexpr int kMklThreadingSequential = 1;
// Below this many multiply-adds (~25 us on one core) a product stays on the calling thread:
// too little work to be worth handing half of it to another.
constexpr int64_t kSplitMinMacs = int64_t{1} << 21;

Sgemm g_sgemm = nullptr;

ffi::Error Gemm(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::F32> b,
                bool trans_a, bool trans_b, ffi::ResultBuffer<ffi::F32> c) {
  if (g_sgemm == nullptr)
    return ffi::Error(ffi::ErrorCode::kFailedPrecondition, "no BLAS loaded for spectralgpt_gemm");
  const auto ad = a.dimensions(), bd = b.dimensions(), cd = c->dimensions();
  if (ad.size() != 2 || bd.size() != 2 || cd.size() != 2)
    return ffi::Error::InvalidArgument("spectralgpt_gemm takes 2-D operands");
  const int64_t m = cd[0], n = cd[1], k = trans_a ? ad[0] : ad[1];
  if ((trans_a ? ad[1] : ad[0]) != m || (trans_b ? bd[1] : bd[0]) != k ||
      (trans_b ? bd[0] : bd[1]) != n)
    return ffi::Error::InvalidArgument("spectralgpt_gemm operand shapes do not match");
  constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
  if (std::max({m, n, k}) > kMaxInt)
    return ffi::Error::InvalidArgument("spectralgpt_gemm dimensions exceed the BLAS int range");
  const float *ap = a.typed_data(), *bp = b.typed_data();
  float* cp = c->typed_data();
  const int lda = static_cast<int>(ad[1]), ldb = static_cast<int>(bd[1]);
  const int ta = trans_a ? kTrans : kNoTrans, tb = trans_b ? kTrans : kNoTrans;
  if (m == 0 || n == 0) return ffi::Error::Success();
  if (k == 0) {
    std::fill(cp, cp + m * n, 0.f);
    return ffi::Error::Success();
  }
  // One panel per thread along the longer output side: every panel reads all of the other
  // operand, so more panels than threads would only repack it more often.
  const int64_t threads = std::max<int64_t>(pool.num_threads(), 1);
  const bool split_rows = m >= n;
  const int64_t side = split_rows ? m : n;
  const int64_t parts = m * n * k < kSplitMinMacs ? 1 : std::min(threads, side);
  const int64_t step = (side + parts - 1) / parts;
  ParallelFor(pool, parts, [=](int64_t part, std::vector<float>&) {
    const int64_t start = part * step, len = std::min(step, side - start);
    if (len <= 0) return;
    if (split_rows) {
      const float* a_part = trans_a ? ap + start : ap + start * lda;
      g_sgemm(kRowMajor, ta, tb, static_cast<int>(len), static_cast<int>(n),
              static_cast<int>(k), 1.f, a_part, lda, bp, ldb, 0.f, cp + start * n,
              static_cast<int>(n));
    } else {
      const float* b_part = trans_b ? bp + start * ldb : bp + start;
      g_sgemm(kRowMajor, ta, tb, static_cast<int>(m), static_cast<int>(len),
              static_cast<int>(k), 1.f, ap, lda, b_part, ldb, 0.f, cp + start,
              static_cast<int>(n));
    }
  });
  return ffi::Error::Success();
}

}  // namespace

// Loads the BLAS at `path` unless one is loaded already. Returns 0 when a BLAS is in place,
// 1 when the library does not load, 2 when it has no cblas_sgemm. (Called from Python, which
// holds the GIL: no two calls race.)
extern "C" int spectralgpt_load_blas(const char* path) {
  if (g_sgemm != nullptr) return 0;
  void* library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) return 1;
  const auto sgemm = reinterpret_cast<Sgemm>(dlsym(library, "cblas_sgemm"));
  if (sgemm == nullptr) {
    dlclose(library);
    return 2;
  }
  // Single-threaded BLAS: set before any other call into MKL or OpenBLAS.
  if (auto set_layer = reinterpret_cast<int (*)(int)>(dlsym(library, "MKL_Set_Threading_Layer")))
    set_layer(kMklThreadingSequential);
  if (auto set_threads = reinterpret_cast<void (*)(int)>(dlsym(library, "openblas_set_num_threads")))
    set_threads(1);
  g_sgemm = sgemm;
  return 0;
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(SpectralgptGemm, Gemm,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Attr<bool>("trans_a")
                                  .Attr<bool>("trans_b")
                                  .Ret<ffi::Buffer<ffi::F32>>());
