// Single-core timings of the fused attention kernel's parts (bench/attention_bench.py builds and
// runs this): the three register-blocked products on one 64-query block at N = 1024, D = 32, the
// vectorised exp, and whole forward / backward problems (one batch element and head).
#include "../spectralgpt_jax/kernels/cpu_attention.cc"

#include <chrono>
#include <cstdio>
#include <random>

namespace {

template <class F>
double SecondsPerCall(F f, int reps) {
  f();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / reps;
}

void Report(const char* what, double seconds, double flops) {
  std::printf("| %s | %.1f | %.0f |\n", what, seconds * 1e6, flops / seconds / 1e9);
}

}  // namespace

int main() {
  constexpr int n = 1024, D = 32, H = 16, qb = 64;
  const int ld = Padded(n);
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  auto random = [&](size_t size) {
    std::vector<float> x(size);
    for (auto& e : x) e = normal(rng) * 0.3f;
    return x;
  };
  std::vector<float> a = random(qb * D), bt = random(D * ld), c = random(qb * ld);
  std::vector<float> b = random(n * D), o(qb * D), acc(n * D);
  const double block_flops = 2.0 * qb * n * D;
  std::printf("| part | us | GFLOP/s |\n|---|---|---|\n");
  Report("Q.K^T block (MatmulNT)", SecondsPerCall([&] {
    MatmulNT<D>(a.data(), bt.data(), qb, n, ld,
                [&](int i, int j, vf t) { Store(c.data() + i * ld + j, t); });
  }, 2000), block_flops);
  Report("P.V block (MatmulNN)",
         SecondsPerCall([&] { MatmulNN<D>(c.data(), b.data(), o.data(), qb, n, ld); }, 2000),
         block_flops);
  Report("P^T.G block (MatmulTNAccumulate)", SecondsPerCall([&] {
    MatmulTNAccumulate<D>(c.data(), a.data(), acc.data(), qb, n, ld);
  }, 2000), block_flops);
  const double exp_s = SecondsPerCall([&] {
    for (int i = 0; i < qb * ld; i += kLanes) Store(c.data() + i, Exp(Load(c.data() + i) * 0.f - 1.f));
  }, 2000);
  std::printf("| exp over one block | %.1f | (%.2f elements/ns) |\n", exp_s * 1e6,
              qb * ld / exp_s / 1e9);

  std::vector<float> q = random(n * H * D), k = random(n * H * D), v = random(n * H * D);
  std::vector<float> g = random(n * H * D), out(n * H * D), dq(n * H * D), dk(n * H * D),
                     dv(n * H * D), lse(H * n), scratch;
  const Problem pr = Locate(3, n, H, D);
  const float scale = 1.f / std::sqrt(float(D));
  Report("forward, one problem", SecondsPerCall([&] {
    ForwardProblem<D>(q.data(), k.data(), v.data(), out.data(), lse.data(), pr, n, scale, scratch);
  }, 200), 4.0 * n * n * D);
  Report("backward, one problem (5 products)", SecondsPerCall([&] {
    BackwardProblem<D>(q.data(), k.data(), v.data(), out.data(), lse.data(), g.data(), dq.data(),
                       dk.data(), dv.data(), pr, n, scale, scratch);
  }, 100), 10.0 * n * n * D);
}
