"""Verification: keyed random streams make every draw a function of its keys alone
(DESIGN §3), so storage order, chunking and unrelated families never change outcomes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import build, run_engine, small_scenario, state_by_key
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

from sim.core import rng

ROOT = Path(__file__).resolve().parent.parent


def test_a_draw_depends_only_on_its_keys():
    keys = np.arange(1000, dtype=np.int64)
    whole = rng.uniform(5, "decision", 3, keys)
    shuffled_keys = keys[::-1].copy()
    assert np.array_equal(rng.uniform(5, "decision", 3, shuffled_keys), whole[::-1])
    assert np.array_equal(rng.uniform(5, "decision", 3, keys[:7]), whole[:7])


@given(
    seed=st.integers(0, 2**63 - 1),
    week=st.integers(0, 10_000),
    family=st.integers(0, 2**40),
    service=st.integers(-1, 10_000),
)
def test_uniform_draws_lie_in_the_unit_interval_and_repeat(seed, week, family, service):
    a = rng.uniform(seed, "s", week, family, service)
    assert 0.0 <= float(a) < 1.0
    assert float(a) == float(rng.uniform(seed, "s", week, family, service))


def test_streams_seeds_weeks_and_services_give_different_draws():
    keys = np.arange(2000)
    base = rng.uniform(1, "a", 0, keys)
    for other in (
        rng.uniform(2, "a", 0, keys),
        rng.uniform(1, "b", 0, keys),
        rng.uniform(1, "a", 1, keys),
        rng.uniform(1, "a", 0, keys, 3),
    ):
        assert np.mean(base == other) < 0.01
        assert abs(np.corrcoef(base, other)[0, 1]) < 0.1


def test_keyed_uniforms_are_uniform():
    u = rng.uniform(9, "check", 0, np.arange(200_000))
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    expected = 10_000
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 45.0  # 19 degrees of freedom, p ~ 0.001


@pytest.fixture(scope="module")
def world():
    return build(small_scenario(run={"burn_in_weeks": 30, "weeks": 20}), seed=3)


@pytest.fixture(scope="module")
def reference_state(world):
    return state_by_key(run_engine(world))


def _assert_same_state(a, b, mask=None):
    for name in a:
        left, right = a[name], b[name]
        if mask is not None:
            left, right = left[mask], right[mask]
        assert np.array_equal(left, right), f"column {name} differs"


def test_permuting_family_storage_changes_no_family(world, reference_state):
    order = np.random.default_rng(0).permutation(world.families.size)
    permuted = run_engine(world.take(order))
    _assert_same_state(reference_state, state_by_key(permuted))


@pytest.fixture(scope="module")
def tiny_world():
    scenario = small_scenario(
        city={"families": 400, "width": 16, "height": 16, "neighbourhoods": 4},
        run={"burn_in_weeks": 20, "weeks": 10},
    )
    return build(scenario, seed=4)


@pytest.mark.parametrize("chunk", [1, 7])
def test_processing_families_in_chunks_changes_no_family(tiny_world, chunk):
    whole = state_by_key(run_engine(tiny_world))
    chunked = state_by_key(run_engine(tiny_world, chunk_size=chunk))
    _assert_same_state(whole, chunked)


def test_deleting_an_unrelated_family_changes_no_other_family():
    """'Unrelated': no ties, and no competition for places or contact capacity — capacity
    is unlimited and there is no outreach or broker pool the family could share. Since new
    families draw ties among all their neighbours and families meet at sites, any family
    can become another's tie: only a city without ties has families unrelated for a run."""
    scenario = small_scenario(
        run={"burn_in_weeks": 30, "weeks": 10},
        population={"ties_spatial": 0, "ties_community": 0, "attendance_tie_prob_week": 0.0},
        market={"places_per_100": 1000.0},
        **{
            "provision.childcare": {"places_per_100": 1000.0},
            "provision.health": {"places_per_100": 1000.0},
            "provision.parenting": {"places_per_100": 1000.0},
            "provision.admin_help": {"places_per_100": 1000.0},
        },
    )
    world = build(scenario, seed=5)
    victim = world.families.size // 2
    assert not world.families.tie_count.any()
    keep = np.delete(np.arange(world.families.size), victim)
    baseline = state_by_key(run_engine(world))
    deleted = state_by_key(run_engine(world.take(keep)))
    victim_slot = world.families.slot[victim]
    mask = baseline["slot"] != victim_slot
    for name in deleted:
        assert np.array_equal(baseline[name][mask], deleted[name]), f"column {name} differs"


@pytest.mark.verification
@given(
    seed=st.integers(0, 2**63 - 1),
    week=st.integers(-60, 5000),
    family=st.integers(0, 2**50),
    service=st.integers(-1, 100_000),
)
def test_the_scalar_draw_of_the_reference_equals_the_vectorised_one(seed, week, family, service):
    assert rng.uniform_one(seed, "s", week, family, service) == float(
        rng.uniform(seed, "s", week, family, service)
    )
    assert rng.bits_one(seed, "s", week, family, service) == int(
        rng.keyed_bits(seed, "s", week, family, service)
    )


@njit
def _kernel_draws(prefix, families, service):
    out = np.empty(len(families))
    for i in range(len(families)):
        out[i] = rng.uniform_from(prefix, families[i], service)
    return out


@pytest.mark.verification
@given(
    seed=st.integers(0, 2**63 - 1),
    week=st.integers(-60, 5000),
    families=st.lists(st.integers(0, 2**50), min_size=1, max_size=20),
    service=st.integers(-1, 100_000),
)
def test_the_kernels_draws_equal_the_reference_draws(seed, week, families, service):
    """What a compiled kernel draws from the stream's prefix equals the reference's draw."""
    keys = np.array(families, dtype=np.int64)
    prefix = np.uint64(rng.prefix_bits(seed, "s", week))
    expected = [rng.uniform_one(seed, "s", week, f, service) for f in families]
    assert _kernel_draws(prefix, keys, service).tolist() == expected
    assert rng.uniform(seed, "s", week, keys, service).tolist() == expected


@pytest.mark.verification
def test_each_week_stream_is_the_stream_it_is_named_after():
    """A kernel's `streams.<name>` starts the draws of stream `<name>` (the name is the key),
    and every weekly stream the per-agent reference draws by name is one of them."""
    streams = rng.week_streams(7, 12)
    for name in rng.WeekStreams._fields:
        value = getattr(streams, name)
        assert isinstance(value, np.uint64) and int(value) == rng.prefix_bits(7, name, 12)
        assert rng.uniform_from(value, 99, 2) == rng.uniform_one(7, name, 12, 99, 2)
    reference = (ROOT / "sim" / "engine" / "reference.py").read_text()
    for name in rng.WeekStreams._fields:
        assert f'"{name}"' in reference, f"the reference draws no stream {name!r}"


@pytest.mark.verification
def test_array_draws_broadcast_like_numpy_and_equal_one_draw_at_a_time():
    keys = np.random.default_rng(0).integers(0, 2**40, size=7)
    weeks = np.arange(7) - 3
    cases = [
        (3, keys, -1),
        (weeks, keys, np.arange(7)),
        (5, keys[:, None], np.arange(4)[None, :]),
        (2, keys[:1], np.arange(7)),
        (weeks, 11, 2),
        (4, 9, 1),
        (1, keys[:0], -1),
    ]
    for week, family, service in cases:
        got = rng.keyed_bits(5, "s", week, family, service)
        w, f, s = np.broadcast_arrays(np.asarray(week), np.asarray(family), np.asarray(service))
        expected = [
            rng.bits_one(5, "s", int(a), int(b), int(c))
            for a, b, c in zip(w.flat, f.flat, s.flat, strict=True)
        ]
        assert got.shape == w.shape
        assert got.ravel().tolist() == expected
