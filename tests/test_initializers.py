"""Initializer catalogue: stated variances vs samples, published constants to full precision."""

import math

import mpmath
import numpy as np
import pytest

import gradmath
from gradmath import GradmathError
from gradmath.initializers import (
    KERAS_TRUNCATED_NORMAL_CORRECTION,
    TRUNCATED_NORMAL_2SD_VARIANCE,
    calculate_gain,
    fans,
)

NAMES = gradmath.initializers()
SHAPES = [(48, 96), (96, 48)]  # (rows, cols): fan_out < fan_in and fan_out > fan_in


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layout", ["out_in", "in_out"])
@pytest.mark.parametrize("shape", SHAPES)
def test_sample_variance_matches_stated_variance(name, layout, shape):
    init = gradmath.initializer(name)
    fan_in, fan_out = fans(shape, layout)
    var = init.variance(fan_in, fan_out)
    w = init.sample(np.random.default_rng(7), (40, *shape), layout=layout)
    assert w.shape == (40, *shape)
    assert abs(w.mean()) < 4 * math.sqrt(var / w.size)
    if init.distribution == "orthogonal":
        # not independent entries: every (semi-)orthogonal matrix has exactly this mean square
        assert np.mean(w**2) == pytest.approx(var, rel=1e-12)
        return
    m2 = np.mean(w**2)  # the mean is known to be zero
    se = math.sqrt(np.var(w**2) / w.size)
    assert abs(m2 - var) < 4 * se, (m2, var, se)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal_is_gain_times_semi_orthogonal(shape, gain):
    w = gradmath.initializer("orthogonal", gain=gain).sample(np.random.default_rng(1), shape)
    small = w @ w.T if shape[0] <= shape[1] else w.T @ w
    np.testing.assert_allclose(small, gain**2 * np.eye(min(shape)), atol=1e-12)


def test_fan_conventions():
    assert fans((300, 100)) == (100, 300)  # torch nn.Linear(100, 300).weight is (out, in)
    assert fans((100, 300), "in_out") == (100, 300)  # keras kernel is (in, out)
    assert fans((5, 300, 100)) == (100, 300)  # leading axes are a batch
    he = gradmath.initializer("he_uniform")
    a = he.sample(np.random.default_rng(0), (300, 100))
    b = he.sample(np.random.default_rng(0), (100, 300), layout="in_out")
    bound = math.sqrt(3 * 2 / 100)  # fan_in = 100 in both layouts
    assert np.abs(a).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(a).max() > 0.99 * bound and np.abs(b).max() > 0.99 * bound


def test_truncated_normal_constants_to_full_precision():
    with mpmath.workdps(40):
        phi2 = mpmath.npdf(2)
        mass = mpmath.ncdf(2) - mpmath.ncdf(-2)
        t = 1 - 4 * phi2 / mass
        assert TRUNCATED_NORMAL_2SD_VARIANCE == float(t)
        # Keras' constant is sqrt(T) as published (keras/src/initializers/random_initializers.py)
        assert KERAS_TRUNCATED_NORMAL_CORRECTION == 0.87962566103423978
        assert abs(KERAS_TRUNCATED_NORMAL_CORRECTION - float(mpmath.sqrt(t))) < 1e-16
    w = gradmath.initializer("he_normal").sample(np.random.default_rng(3), (200, 500))
    std = math.sqrt(2 / 500) / KERAS_TRUNCATED_NORMAL_CORRECTION
    assert np.abs(w).max() <= 2 * std


def test_variances_exactly():
    fi, fo = 300, 100
    v = {n: gradmath.initializer(n).variance(fi, fo) for n in NAMES}
    assert v["torch_linear_default"] == 1 / (3 * fi)
    assert gradmath.initializer("torch_linear_default").sigma_b2(fi) == 1 / (3 * fi)
    assert gradmath.initializer("he_uniform").variance(fi, fo) == 2 / fi
    assert v["xavier_uniform"] == v["xavier_normal"] == 2 / (fi + fo)
    assert v["glorot_uniform"] == 2 / (fi + fo)
    assert v["lecun_uniform"] == 1 / fi
    assert v["kaiming_normal"] == pytest.approx(2 / (1 + 0.0) / fi, rel=1e-15)
    assert v["orthogonal"] == 1 / fi
    for n in ("glorot_normal", "he_normal", "lecun_normal"):  # Keras: exact to ~1 ulp
        assert v[n] == pytest.approx(v[n.replace("normal", "uniform")], rel=1e-15)
    fan_out = gradmath.initializer("kaiming_normal", mode="fan_out", a=0.2)
    assert fan_out.variance(fi, fo) == pytest.approx(2 / (1 + 0.04) / fo, rel=1e-15)
    assert gradmath.initializer("normal", sigma_w2=4.0).sigma_w2(fi, fo) == 4.0


def test_pytorch_gains():
    assert calculate_gain("linear") == 1 and calculate_gain("sigmoid") == 1
    assert calculate_gain("tanh") == 5 / 3
    assert calculate_gain("relu") == math.sqrt(2)
    assert calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01**2))
    assert calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert calculate_gain("selu") == 0.75
    # torch_linear_default is kaiming_uniform with a = √5
    a5 = gradmath.initializer("kaiming_uniform", a=math.sqrt(5))
    assert a5.variance(64, 32) == pytest.approx(1 / (3 * 64), rel=1e-15)


def test_spellings():
    assert gradmath.initializer("kaiming_normal_").name == "kaiming_normal"
    assert gradmath.initializer("GlorotUniform").name == "glorot_uniform"
    assert gradmath.initializer("pytorch_default").name == "torch_linear_default"


def test_bad_input_is_explained():
    with pytest.raises(GradmathError, match=r"Unknown initializer 'he_norml'.*'he_normal'"):
        gradmath.initializer("he_norml")
    he = gradmath.initializer("he_normal")
    with pytest.raises(GradmathError, match=r"`fan_in` \(=0\) must be a positive integer"):
        he.variance(0, 10)
    with pytest.raises(GradmathError, match=r"numpy\.random\.Generator"):
        he.sample(42, (3, 3))
    with pytest.raises(GradmathError, match=r"`mode` \(='fan_sideways'\)"):
        gradmath.initializer("kaiming_uniform", mode="fan_sideways")
    with pytest.raises(GradmathError, match="two axes"):
        he.sample(np.random.default_rng(0), (5,))
    with pytest.raises(GradmathError, match="No gain"):
        calculate_gain("softmax2")
    with pytest.raises(GradmathError, match="takes gain"):
        gradmath.initializer("orthogonal", scale=2)


@pytest.mark.parametrize("name", ["he_normal", "glorot_normal", "he_uniform", "orthogonal"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sampling_into_out_gives_the_same_values(name: str, dtype: type) -> None:
    # numeric.simulate draws each network's weights straight into its slice of a stack.
    init = gradmath.initializer(name)
    fresh = init.sample(np.random.default_rng(5), (3, 50, 40), dtype=dtype)
    stack = np.zeros((2, 3, 50, 40), dtype=dtype)
    got = init.sample(np.random.default_rng(5), (3, 50, 40), dtype=dtype, out=stack[1])
    assert got.base is stack or got is stack[1] or np.shares_memory(got, stack)
    np.testing.assert_array_equal(stack[1], fresh)
    assert not stack[0].any()


@pytest.mark.parametrize("name", ["he_normal", "glorot_normal", "he_uniform", "orthogonal"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sampling_a_stack_is_sampling_each_matrix(name: str, dtype: type) -> None:
    # numeric.simulate draws one matrix per network and layer, each from its own generator.
    init = gradmath.initializer(name)
    stack = np.empty((3, 30, 20), dtype=dtype)
    got = init.sample_stack([np.random.default_rng(k) for k in range(3)], stack)
    assert got is stack
    for k in range(3):
        np.testing.assert_array_equal(
            stack[k], init.sample(np.random.default_rng(k), (30, 20), dtype=dtype)
        )
    with pytest.raises(GradmathError, match="one weight per generator"):
        init.sample_stack([np.random.default_rng(0)], stack)


@pytest.mark.parametrize(
    "out",
    [np.empty((5, 4)), np.empty((4, 5), dtype=np.float32), np.empty((4, 10))[:, ::2]],
)
def test_sampling_into_a_wrong_out_is_refused(out: np.ndarray) -> None:
    with pytest.raises(GradmathError, match="`out`"):
        gradmath.initializer("he_normal").sample(np.random.default_rng(0), (4, 5), out=out)


# --------------------------------------------------------------------------- delta-orthogonal


@pytest.mark.parametrize("c_in,c_out", [(4, 4), (3, 7), (7, 3)])
@pytest.mark.parametrize("spatial", [(3,), (5, 3), (3, 3, 3)])
def test_delta_orthogonal_kernel_is_a_centred_orthogonal_tap(
    c_in: int, c_out: int, spatial: tuple[int, ...]
) -> None:
    init = gradmath.initializer("delta_orthogonal", gain=1.5)
    w = init.sample_kernel(np.random.default_rng(0), (c_out, c_in, *spatial))
    centre = tuple(k // 2 for k in spatial)
    h = w[(slice(None), slice(None), *centre)]
    gram = h.T @ h if c_in <= c_out else h @ h.T
    assert gram == pytest.approx(2.25 * np.eye(min(c_in, c_out)), abs=1e-12)
    rest = w.copy()
    rest[(slice(None), slice(None), *centre)] = 0
    assert not rest.any()
    keras = init.sample_kernel(np.random.default_rng(0), (*spatial, c_in, c_out), layout="in_out")
    assert np.array_equal(keras[(*centre, slice(None), slice(None))], h.T)


def test_delta_orthogonal_convolution_is_an_isometry() -> None:
    # 1-D circular convolution with c_in ≤ c_out, written out as a matrix: MᵀM = gain² I.
    c_in, c_out, k, n = 3, 5, 3, 8
    w = gradmath.initializer("delta_orthogonal", gain=0.8).sample_kernel(
        np.random.default_rng(4), (c_out, c_in, k)
    )
    m = np.zeros((c_out * n, c_in * n))
    for t in range(n):
        for j in range(k):
            src = (t + j - k // 2) % n
            m[t * c_out : (t + 1) * c_out, src * c_in : (src + 1) * c_in] += w[:, :, j]
    assert m.T @ m == pytest.approx(0.64 * np.eye(c_in * n), abs=1e-12)
    # The per-entry variance is that of orthogonal with the receptive field in the fans.
    init = gradmath.initializer("delta_orthogonal", gain=0.8)
    assert init.variance(c_in * k, c_out * k) == pytest.approx(0.64 / (k * c_out))
    assert "Xiao" in init.reference
    with pytest.raises(GradmathError, match="spatial"):
        init.sample_kernel(np.random.default_rng(0), (3, 3))


def test_delta_orthogonal_haar_centre() -> None:
    # The centre tap is Haar: E[h_11²] = 1/c and E[h_11⁴] = 3/(c(c + 2)) for c × c orthogonal.
    c = 6
    init = gradmath.initializer("delta_orthogonal")
    rng = np.random.default_rng(9)
    x = np.array([init.sample_kernel(rng, (c, c, 3, 3))[0, 0, 1, 1] for _ in range(4000)])
    se2 = np.std(x**2) / math.sqrt(x.size)
    se4 = np.std(x**4) / math.sqrt(x.size)
    assert abs(np.mean(x**2) - 1 / c) < 4 * se2
    assert abs(np.mean(x**4) - 3 / (c * (c + 2))) < 4 * se4
