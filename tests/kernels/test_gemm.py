"""xnor_gemm: every backend bit-exact against the float ±1 matmul, and clear errors."""

import numpy as np
import pytest

from tinybnn.errors import ConfigError, ShapeError
from tinybnn.kernels import available_backends, gpu, pack_bits, xnor_gemm

from .references import float_matmul, random_real

# (M, N, K): K < 64, K a multiple of 64, K not one; M around the numba block of 64 rows, N
# around its register block of 4 columns; W = 18 words > the CUDA tile of 16 words; W = 3 and
# 7 words (the numba 3-word pass).
SHAPES = [(1, 1, 1), (3, 5, 63), (7, 4, 64), (65, 9, 65), (130, 33, 200), (64, 8, 256),
          (257, 19, 577), (40, 21, 1100), (129, 6, 144), (70, 5, 440)]


@pytest.mark.parametrize("m, n, k", SHAPES)
def test_matches_float_matmul(backend, m, n, k):
    rng = np.random.default_rng(m * 1000 + n + k)
    a, b = random_real(rng, (m, k)), random_real(rng, (n, k))
    dots = xnor_gemm(pack_bits(a), pack_bits(b), k, backend=backend)
    assert dots.shape == (m, n) and dots.dtype == np.int32
    np.testing.assert_array_equal(dots, float_matmul(a, b))


def test_extreme_dots_are_plus_and_minus_k(backend):
    k = 100
    ones = pack_bits(np.ones((2, k)))
    dots = xnor_gemm(ones, pack_bits(np.array([[1.0] * k, [-1.0] * k])), k, backend=backend)
    np.testing.assert_array_equal(dots, [[k, -k], [k, -k]])


@pytest.mark.parametrize("m, n", [(0, 3), (3, 0)])
def test_empty_operands_give_an_empty_result(backend, m, n):
    a, b = np.zeros((m, 2), np.uint64), np.zeros((n, 2), np.uint64)
    assert xnor_gemm(a, b, 100, backend=backend).shape == (m, n)


def test_numba_result_is_a_column_major_view_with_the_same_values():
    rng = np.random.default_rng(0)
    a, b = pack_bits(random_real(rng, (70, 90))), pack_bits(random_real(rng, (6, 90)))
    dots = xnor_gemm(a, b, 90, backend="numba")
    assert dots.flags.f_contiguous
    np.testing.assert_array_equal(np.ascontiguousarray(dots), xnor_gemm(a, b, 90, "numpy"))


def test_wrong_dtype_is_a_shape_error_naming_the_fix():
    with pytest.raises(ShapeError, match=r"a_packed must be uint64 words .* pack_bits\(x"):
        xnor_gemm(np.ones((2, 1)), pack_bits(np.ones((2, 10))), 10)


def test_word_count_mismatch_is_a_shape_error():
    a, b = pack_bits(np.ones((2, 100))), pack_bits(np.ones((3, 200)))
    with pytest.raises(ShapeError, match="a_packed has 2 words per row but b_packed has 4"):
        xnor_gemm(a, b, 100)


def test_k_that_does_not_fit_the_words_is_a_shape_error():
    a = pack_bits(np.ones((2, 100)))
    with pytest.raises(ShapeError, match=r"k=10 bits need ceil\(10/64\) = 1"):
        xnor_gemm(a, a, 10)


def test_one_dimensional_operand_is_a_shape_error():
    with pytest.raises(ShapeError, match=r"must be 2-D \(rows, words\)"):
        xnor_gemm(pack_bits(np.ones(10)), pack_bits(np.ones((2, 10))), 10)


def test_unknown_backend_is_a_config_error_listing_the_valid_ones():
    a = pack_bits(np.ones((2, 10)))
    with pytest.raises(ConfigError, match="unknown kernel backend 'cuda'; valid backends: "
                                          "numpy, numba, cupy"):
        xnor_gemm(a, a, 10, backend="cuda")


def test_cupy_backend_without_cupy_says_why_and_what_to_use():
    if gpu.cupy_error() is None:
        pytest.skip("CuPy and a GPU are present")
    a = pack_bits(np.ones((2, 10)))
    with pytest.raises(ConfigError, match="backend 'cupy' is not available: .*backend='numba'"):
        xnor_gemm(a, a, 10, backend="cupy")
    assert "cupy" not in available_backends()
    assert available_backends()[:2] == ["numba", "numpy"]
