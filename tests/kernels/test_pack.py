"""pack_bits / unpack_bits: the bit layout of DESIGN.md, round trips, and clear errors."""

import numpy as np
import pytest

from tinybnn.errors import ShapeError
from tinybnn.kernels import n_words, pack_bits, unpack_bits

from .references import random_real, signs


@pytest.mark.parametrize("k", [1, 7, 63, 64, 65, 128, 130, 200])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_round_trip_gives_the_signs_back(k, axis):
    rng = np.random.default_rng(k)
    shape = [3, 4, 5]
    shape[axis] = k
    x = random_real(rng, shape)
    packed = pack_bits(x, axis=axis)
    expected_shape = list(shape)
    expected_shape[axis] = n_words(k)
    assert packed.dtype == np.uint64 and list(packed.shape) == expected_shape
    values = unpack_bits(packed, k, axis=axis)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, signs(x))


def test_bit_layout_is_little_endian_with_bit_1_for_plus_one():
    x = -np.ones(130)
    x[[0, 3, 63, 64, 129]] = 1.0
    words = pack_bits(x)
    assert words.tolist() == [(1 << 0) | (1 << 3) | (1 << 63), 1 << 0, 1 << 1]


def test_sign_of_zero_is_plus_one_and_padding_bits_are_zero():
    words = pack_bits(np.zeros(70, np.float32))
    assert words[0] == np.uint64(2**64 - 1)
    assert words[1] == np.uint64(2**6 - 1)          # 6 real bits, the 58 padding bits are 0
    assert pack_bits(np.array([-0.0]))[0] == 1       # -0.0 >= 0 as well


def test_bool_input_counts_true_as_plus_one():
    np.testing.assert_array_equal(pack_bits(np.array([True, False, True])), [0b101])


def test_n_words():
    assert [n_words(k) for k in (0, 1, 64, 65, 128, 129)] == [0, 1, 1, 2, 2, 3]


def test_unpack_with_a_k_that_does_not_fit_the_words_is_a_shape_error():
    packed = pack_bits(np.ones((2, 100)))
    with pytest.raises(ShapeError, match=r"2 words per row but k=300 bits need ceil\(300/64\) = 5"):
        unpack_bits(packed, 300)


def test_unpack_needs_uint64_words():
    with pytest.raises(ShapeError, match="needs uint64 words"):
        unpack_bits(np.ones((2, 2)), 64)


def test_pack_rejects_complex_input_and_bad_axes():
    with pytest.raises(ShapeError, match="real .* array, got dtype complex128"):
        pack_bits(np.ones(3, complex))
    with pytest.raises(ShapeError, match="axis 2 is out of range for an array with 2 axes"):
        pack_bits(np.ones((2, 3)), axis=2)
