// The fused attention kernel (infer/attention.h) against softmax(scale · Q Kᵀ) V computed in double precision
// by plain loops, on every shape class it has code for: head sizes 16, 32 and 64; key counts below, at and
// across the 16-key vectors and 64-key blocks; query-row counts below, at and across its 8-row blocks; one
// query row (the engine's last layer, [CLS] only); rows with gaps (leading dimensions wider than the head).
// The AVX2 kernel (attention_head_avx2) against the same reference, on every CPU with AVX2.
// The bf16 path against the same reference computed from q, k and v rounded to bf16 (what its products
// read): what remains is the rounding of the probabilities, at most 2⁻⁹ of each.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "infer/attention.h"
#include "infer/vector_math.h"

namespace disranker {
namespace {

struct Case {
  std::int64_t rows, length, dim;
};

// q, k, v: rows/length × ld with the head in the first `dim` columns; out: rows × out_ld.
std::vector<double> reference(const Case& c, const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, std::int64_t ld, float scale) {
  std::vector<double> out(static_cast<std::size_t>(c.rows * c.dim), 0.0);
  for (std::int64_t r = 0; r < c.rows; ++r) {
    std::vector<double> s(static_cast<std::size_t>(c.length));
    double top = -INFINITY, total = 0;
    for (std::int64_t j = 0; j < c.length; ++j) {
      double dot = 0;
      for (std::int64_t d = 0; d < c.dim; ++d) dot += static_cast<double>(q[r * ld + d]) * k[j * ld + d];
      s[j] = scale * dot;
      top = std::max(top, s[j]);
    }
    for (double& x : s) total += x = std::exp(x - top);
    for (std::int64_t j = 0; j < c.length; ++j)
      for (std::int64_t d = 0; d < c.dim; ++d) out[r * c.dim + d] += s[j] / total * v[j * ld + d];
  }
  return out;
}

// x rounded to the nearest bf16 (ties to even), as vcvtne2ps2bf16 rounds.
float round_to_bf16(float x) {
  auto bits = std::bit_cast<std::uint32_t>(x);
  bits += 0x7fff + ((bits >> 16) & 1);
  return std::bit_cast<float>(bits & 0xffff0000u);
}

using Kernel = void (*)(const AttentionHead&, float*);

// Runs every shape class through `kernel` (with bf16 products or not) against the double reference.
void expect_kernel_matches_reference(Kernel kernel, bool bf16) {
  std::mt19937 random(3);
  std::normal_distribution<float> normal(0.0f, 1.5f);  // wide scores: the softmax is far from uniform
  int checked = 0;
  for (const std::int64_t dim : {16, 32, 64}) {
    for (const std::int64_t length : {1, 5, 16, 17, 64, 65, 95, 130}) {
      for (const std::int64_t rows :
           {std::int64_t{1}, std::int64_t{7}, std::int64_t{8}, std::int64_t{13}, length}) {
        const Case c{rows, length, dim};
        const std::int64_t ld = dim + 24, out_ld = dim + 8;  // gaps between rows, as in the packed qkv
        std::vector<float> q(static_cast<std::size_t>(rows * ld)), k(static_cast<std::size_t>(length * ld)),
            v(k.size());
        for (auto* x : {&q, &k, &v})
          for (float& e : *x) e = normal(random);
        std::vector<float> out(static_cast<std::size_t>(rows * out_ld), 12345.0f);
        std::vector<float> workspace(static_cast<std::size_t>(attention_workspace_floats(length, dim)), NAN);
        AttentionHead head;
        head.query = q.data(), head.query_ld = ld, head.key = k.data(), head.value = v.data(),
        head.kv_ld = ld;
        head.rows = rows, head.length = length, head.dim = dim;
        head.scale = 1.0f / std::sqrt(static_cast<float>(dim));
        head.out = out.data(), head.out_ld = out_ld;
        head.bf16 = bf16;
        kernel(head, workspace.data());
        float largest_value = 0;
        for (float& e : v) largest_value = std::max(largest_value, std::fabs(e));
        for (auto* x : {&q, &k, &v})
          for (float& e : *x) e = bf16 ? round_to_bf16(e) : e;
        const auto expected = reference(c, q, k, v, ld, head.scale);
        const double tolerance = bf16 ? largest_value / 256.0 : 2e-5;
        for (std::int64_t r = 0; r < rows; ++r) {
          for (std::int64_t d = 0; d < out_ld; ++d) {
            const float got = out[static_cast<std::size_t>(r * out_ld + d)];
            if (d >= dim) {
              ASSERT_EQ(got, 12345.0f) << "wrote outside the head: row " << r << ", column " << d;
              continue;
            }
            ASSERT_NEAR(got, expected[static_cast<std::size_t>(r * dim + d)], tolerance)
                << "dim " << dim << ", length " << length << ", rows " << rows << ", row " << r << ", column "
                << d;
          }
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 3 * 8 * 5);
}

TEST(AttentionKernel, MatchesSoftmaxQKtVInDoublePrecision) {
  if (!attention_kernel_supports(32))
    GTEST_SKIP() << "neither AVX-512F nor AVX2 on this CPU: the engine uses its GEMM path";
  expect_kernel_matches_reference(attention_head, false);
}

TEST(AttentionKernel, Avx2KernelMatchesSoftmaxQKtVInDoublePrecision) {
  if (!vector_math_uses_avx2()) GTEST_SKIP() << "no AVX2 and FMA on this CPU";
  expect_kernel_matches_reference(attention_head_avx2, false);
}

TEST(AttentionKernel, MatchesTheReferenceOnBf16RoundedInputsWithBf16Products) {
  if (!attention_kernel_supports(32) || !attention_bf16_supports())
    GTEST_SKIP() << "no AVX512_BF16 on this CPU: the engine keeps float32 products";
  expect_kernel_matches_reference(attention_head, true);
}

TEST(AttentionKernel, SupportsBertsHeadSizesOnly) {
  if (!attention_kernel_supports(64)) GTEST_SKIP() << "neither AVX-512F nor AVX2 on this CPU";
  for (const std::int64_t dim : {16, 32, 64}) EXPECT_TRUE(attention_kernel_supports(dim)) << dim;
  for (const std::int64_t dim : {8, 24, 48, 80, 128}) EXPECT_FALSE(attention_kernel_supports(dim)) << dim;
}

}  // namespace
}  // namespace disranker
