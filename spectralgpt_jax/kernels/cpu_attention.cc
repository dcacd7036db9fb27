// Fused softmax attention for XLA:CPU: forward and backward as XLA FFI handlers.
//
// q, k, v, out, g: float32 [B, N, H, D] (the layout the model produces, no transposes);
// lse: float32 [B, H, N], the log-sum-exp of each query's scaled logits, saved by the forward
// for the backward (FlashAttention's recipe). The B*H problems are spread over XLA's intra-op
// thread pool; each problem walks its queries in blocks whose logits stay in L2, so the N x N
// matrix never goes out to main memory. Needs D in {32, 64} and N % 16 == 0; the Python side
// checks and otherwise uses the XLA implementation.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "simd.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using namespace spectralgpt_kernels;

// For every 16-wide tile of c[rows, m] = a[rows, D] . bt[D, m] (bt is b transposed, row stride
// ld; rows % 4 == 0, m % 16 == 0) calls emit(row, col, tile): the caller stores it, fused with
// what comes next (row max, exp). Key blocks outside, query rows inside: the 8 KiB bt panel of a
// block stays in L1 while every query row passes over it.
template <int D, typename Emit>
void MatmulNT(const float* a, const float* bt, int rows, int m, int ld, Emit emit) {
  int j = 0;
  for (; j + 4 * kLanes <= m; j += 4 * kLanes) {
    for (int i = 0; i < rows; i += 4) {
      vf acc[4][4] = {};
      for (int d = 0; d < D; ++d) {
        const float* b = bt + d * ld + j;
        const vf b0 = Load(b), b1 = Load(b + kLanes), b2 = Load(b + 2 * kLanes),
                 b3 = Load(b + 3 * kLanes);
        for (int r = 0; r < 4; ++r) {
          const vf x = Splat(a[(i + r) * D + d]);
          acc[r][0] += x * b0;
          acc[r][1] += x * b1;
          acc[r][2] += x * b2;
          acc[r][3] += x * b3;
        }
      }
      for (int r = 0; r < 4; ++r)
        for (int u = 0; u < 4; ++u) emit(i + r, j + u * kLanes, acc[r][u]);
    }
  }
  for (; j < m; j += kLanes) {
    for (int i = 0; i < rows; i += 4) {
      vf acc[4] = {};
      for (int d = 0; d < D; ++d) {
        const vf b = Load(bt + d * ld + j);
        for (int r = 0; r < 4; ++r) acc[r] += Splat(a[(i + r) * D + d]) * b;
      }
      for (int r = 0; r < 4; ++r) emit(i + r, j, acc[r]);
    }
  }
}

// Rows of the [*, D] results handled per register block: R x D/16 accumulators.
template <int D>
constexpr int kRows = D == 32 ? 8 : 4;

// c[rows, D] = p[rows, m] . b[m, D]; rows % kRows<D> == 0; p has row stride ld. Keys go in
// chunks whose rows of b (16 KiB) stay in L1 across all row groups.
template <int D>
void MatmulNN(const float* p, const float* b, float* c, int rows, int m, int ld) {
  constexpr int R = kRows<D>, U = D / kLanes, kChunk = 4096 / D;
  for (int j0 = 0; j0 < m; j0 += kChunk) {
    const int j1 = std::min(m, j0 + kChunk);
    for (int i = 0; i < rows; i += R) {
      vf acc[R][U];
      for (int r = 0; r < R; ++r)
        for (int u = 0; u < U; ++u) acc[r][u] = j0 ? Load(c + (i + r) * D + u * kLanes) : vf{};
      for (int j = j0; j < j1; ++j) {
        vf bv[U];
        for (int u = 0; u < U; ++u) bv[u] = Load(b + j * D + u * kLanes);
        for (int r = 0; r < R; ++r) {
          const vf x = Splat(p[(i + r) * ld + j]);
          for (int u = 0; u < U; ++u) acc[r][u] += x * bv[u];
        }
      }
      for (int r = 0; r < R; ++r)
        for (int u = 0; u < U; ++u) Store(c + (i + r) * D + u * kLanes, acc[r][u]);
    }
  }
}

// c[m, D] += p[rows, m]^T . b[rows, D]; m % kRows<D> == 0; p has row stride ld.
template <int D>
void MatmulTNAccumulate(const float* p, const float* b, float* c, int rows, int m, int ld) {
  constexpr int R = kRows<D>, U = D / kLanes;
  for (int j = 0; j < m; j += R) {
    vf acc[R][U];
    for (int r = 0; r < R; ++r)
      for (int u = 0; u < U; ++u) acc[r][u] = Load(c + (j + r) * D + u * kLanes);
    for (int i = 0; i < rows; ++i) {
      vf bv[U];
      for (int u = 0; u < U; ++u) bv[u] = Load(b + i * D + u * kLanes);
      for (int r = 0; r < R; ++r) {
        const vf x = Splat(p[i * ld + j + r]);
        for (int u = 0; u < U; ++u) acc[r][u] += x * bv[u];
      }
    }
    for (int r = 0; r < R; ++r)
      for (int u = 0; u < U; ++u) Store(c + (j + r) * D + u * kLanes, acc[r][u]);
  }
}

// One attention problem (a batch element and head) inside [B, N, H, D] arrays.
struct Problem {
  int64_t offset;  // of row 0 of this (b, h)
  int64_t stride;  // between rows: H * D
  int64_t lse_offset;
};

inline Problem Locate(int64_t index, int64_t n, int64_t h, int64_t d) {
  const int64_t b = index / h, head = index % h;
  return {(b * n * h + head) * d, h * d, index * n};
}

// Query rows per block: the [block, N] logits (and dP in the backward) stay in L2. (32 and 64
// measured the same at N = 1024.) Per-row statistics live in arrays of kMaxQueryBlock.
constexpr int kMaxQueryBlock = 64;
inline int QueryBlock(int64_t n) { return n >= 512 ? kMaxQueryBlock : 32; }

// Row stride of [*, n] scratch matrices: n rounded to a cache line, plus one line, so that rows
// 4 KiB apart do not all map to the same L1 set.
inline int Padded(int n) { return (n + kLanes - 1) / kLanes * kLanes + kLanes; }

template <int D>
void PackRows(const float* src, const Problem& pr, int n, float* dst, float scale = 1.f) {
  for (int j = 0; j < n; ++j)
    for (int d = 0; d < D; ++d) dst[j * D + d] = src[pr.offset + j * pr.stride + d] * scale;
}

template <int D>
void PackTransposed(const float* src, const Problem& pr, int n, int ld, float* dst) {
  for (int j = 0; j < n; ++j)
    for (int d = 0; d < D; ++d) dst[d * ld + j] = src[pr.offset + j * pr.stride + d];
}

template <int D>
void ForwardProblem(const float* q, const float* k, const float* v, float* out, float* lse,
                    const Problem& pr, int n, float scale, std::vector<float>& scratch) {
  const int qb = QueryBlock(n), ld = Padded(n);
  scratch.resize(size_t(ld) * D + size_t(n) * D + size_t(qb) * ld + 2 * size_t(qb) * D);
  float* kt = scratch.data();
  float* vp = kt + ld * D;
  float* s = vp + n * D;
  float* qs = s + qb * ld;
  float* o = qs + qb * D;
  PackTransposed<D>(k, pr, n, ld, kt);
  PackRows<D>(v, pr, n, vp);
  for (int q0 = 0; q0 < n; q0 += qb) {
    const int rows = std::min(qb, n - q0);
    for (int i = 0; i < rows; ++i)
      for (int d = 0; d < D; ++d) qs[i * D + d] = q[pr.offset + (q0 + i) * pr.stride + d] * scale;
    vf lane_max[kMaxQueryBlock];
    std::fill(lane_max, lane_max + rows, Splat(-INFINITY));
    MatmulNT<D>(qs, kt, rows, n, ld, [&](int i, int j, vf tile) {
      Store(s + i * ld + j, tile);
      lane_max[i] = Max(lane_max[i], tile);
    });
    float total[kMaxQueryBlock], row_max[kMaxQueryBlock];
    for (int i = 0; i < rows; ++i) {
      float* row = s + i * ld;
      const float m = HorizontalMax(lane_max[i]);
      vf sum = {};
      for (int j = 0; j < n; j += kLanes) {
        const vf e = Exp(Load(row + j) - m);
        Store(row + j, e);
        sum += e;
      }
      row_max[i] = m;
      total[i] = HorizontalSum(sum);
    }
    MatmulNN<D>(s, vp, o, rows, n, ld);
    for (int i = 0; i < rows; ++i) {
      const float inv = 1.f / total[i];
      float* dst = out + pr.offset + (q0 + i) * pr.stride;
      for (int d = 0; d < D; ++d) dst[d] = o[i * D + d] * inv;
      lse[pr.lse_offset + q0 + i] = row_max[i] + std::log(total[i]);
    }
  }
}

template <int D>
void BackwardProblem(const float* q, const float* k, const float* v, const float* out,
                     const float* lse, const float* g, float* dq, float* dk, float* dv,
                     const Problem& pr, int n, float scale, std::vector<float>& scratch) {
  const int qb = QueryBlock(n), ld = Padded(n);
  scratch.resize(2 * size_t(ld) * D + 3 * size_t(n) * D + 2 * size_t(qb) * ld +
                 3 * size_t(qb) * D);
  float* kt = scratch.data();
  float* vt = kt + ld * D;
  float* kp = vt + ld * D;
  float* dkp = kp + n * D;
  float* dvp = dkp + n * D;
  float* p = dvp + n * D;
  float* ds = p + qb * ld;
  float* qs = ds + qb * ld;
  float* gp = qs + qb * D;
  float* dqp = gp + qb * D;
  PackTransposed<D>(k, pr, n, ld, kt);
  PackTransposed<D>(v, pr, n, ld, vt);
  PackRows<D>(k, pr, n, kp);
  std::fill(dkp, dkp + 2 * n * D, 0.f);
  for (int q0 = 0; q0 < n; q0 += qb) {
    const int rows = std::min(qb, n - q0);
    float delta[kMaxQueryBlock];
    for (int i = 0; i < rows; ++i) {
      const int64_t at = pr.offset + (q0 + i) * pr.stride;
      float dot = 0.f;
      for (int d = 0; d < D; ++d) {
        qs[i * D + d] = q[at + d] * scale;
        gp[i * D + d] = g[at + d];
        dot += g[at + d] * out[at + d];
      }
      delta[i] = dot;
    }
    // dP = g v^T first; then the logits, whose tiles become p = exp(s - lse) and
    // ds = p * (dP - delta) on their way out.
    MatmulNT<D>(gp, vt, rows, n, ld, [&](int i, int j, vf tile) { Store(ds + i * ld + j, tile); });
    MatmulNT<D>(qs, kt, rows, n, ld, [&](int i, int j, vf tile) {
      const vf e = Exp(tile - lse[pr.lse_offset + q0 + i]);
      Store(p + i * ld + j, e);
      Store(ds + i * ld + j, e * (Load(ds + i * ld + j) - delta[i]));
    });
    MatmulTNAccumulate<D>(p, gp, dvp, rows, n, ld);
    MatmulTNAccumulate<D>(ds, qs, dkp, rows, n, ld);
    MatmulNN<D>(ds, kp, dqp, rows, n, ld);
    for (int i = 0; i < rows; ++i) {
      float* dst = dq + pr.offset + (q0 + i) * pr.stride;
      for (int d = 0; d < D; ++d) dst[d] = dqp[i * D + d] * scale;
    }
  }
  for (int j = 0; j < n; ++j)
    for (int d = 0; d < D; ++d) {
      dk[pr.offset + j * pr.stride + d] = dkp[j * D + d];
      dv[pr.offset + j * pr.stride + d] = dvp[j * D + d];
    }
}

struct Shape {
  int64_t b, n, h, d;
};

ffi::Error CheckShape(const ffi::Buffer<ffi::F32>& x, Shape* shape) {
  const auto dims = x.dimensions();
  if (dims.size() != 4)
    return ffi::Error::InvalidArgument("attention inputs must be [B, N, H, D]");
  *shape = {dims[0], dims[1], dims[2], dims[3]};
  if ((shape->d != 32 && shape->d != 64) || shape->n % 16 != 0)
    return ffi::Error::InvalidArgument("fused CPU attention needs D in {32, 64}, N % 16 == 0");
  return ffi::Error::Success();
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k,
                   ffi::Buffer<ffi::F32> v, float scale, ffi::ResultBuffer<ffi::F32> out,
                   ffi::ResultBuffer<ffi::F32> lse) {
  Shape s;
  if (ffi::Error error = CheckShape(q, &s); error.failure()) return error;
  const float *qp = q.typed_data(), *kp = k.typed_data(), *vp = v.typed_data();
  float *op = out->typed_data(), *lp = lse->typed_data();
  ParallelFor(pool, s.b * s.h, [=](int64_t i, std::vector<float>& scratch) {
    const Problem pr = Locate(i, s.n, s.h, s.d);
    if (s.d == 32)
      ForwardProblem<32>(qp, kp, vp, op, lp, pr, s.n, scale, scratch);
    else
      ForwardProblem<64>(qp, kp, vp, op, lp, pr, s.n, scale, scratch);
  });
  return ffi::Error::Success();
}

ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k,
                    ffi::Buffer<ffi::F32> v, ffi::Buffer<ffi::F32> out,
                    ffi::Buffer<ffi::F32> lse, ffi::Buffer<ffi::F32> g, float scale,
                    ffi::ResultBuffer<ffi::F32> dq, ffi::ResultBuffer<ffi::F32> dk,
                    ffi::ResultBuffer<ffi::F32> dv) {
  Shape s;
  if (ffi::Error error = CheckShape(q, &s); error.failure()) return error;
  const float *qp = q.typed_data(), *kp = k.typed_data(), *vp = v.typed_data();
  const float *op = out.typed_data(), *lp = lse.typed_data(), *gp = g.typed_data();
  float *dqp = dq->typed_data(), *dkp = dk->typed_data(), *dvp = dv->typed_data();
  ParallelFor(pool, s.b * s.h, [=](int64_t i, std::vector<float>& scratch) {
    const Problem pr = Locate(i, s.n, s.h, s.d);
    if (s.d == 32)
      BackwardProblem<32>(qp, kp, vp, op, lp, gp, dqp, dkp, dvp, pr, s.n, scale, scratch);
    else
      BackwardProblem<64>(qp, kp, vp, op, lp, gp, dqp, dkp, dvp, pr, s.n, scale, scratch);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(SpectralgptAttentionForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("scale")
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(SpectralgptAttentionBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("scale")
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
