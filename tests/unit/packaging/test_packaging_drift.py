"""Cumulative drift counts: rows are binned lazily, at reads, from the ring buffer.

`Window.add` only copies rows (and counts them); a read (`cumulative`, or `scores`
for the metrics) bins the rows that arrived since the previous read. If more arrived
than the ring holds, the latest `size` of them are binned and the rest never are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pitstop.packaging import drift, profile, signature

SIZE = 10


def training() -> profile.DataProfile:
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {
            "x": rng.normal(0.0, 1.0, 1000),
            "c": rng.choice(["a", "b", "z"], 1000, p=[0.6, 0.3, 0.1]),
            "flag": rng.random(1000) < 0.5,
        }
    )
    data.loc[:9, "x"] = np.nan
    sig = signature.Signature(
        features=[signature.infer_feature(str(name), data[name]) for name in data.columns],
        output=signature.Output(kind="regression"),
    )
    return profile.build(data, sig)


PROFILE = training()


def rows(count: int, seed: int) -> list[tuple[object, ...]]:
    rng = np.random.default_rng(seed)
    return [
        (float(rng.normal()), str(rng.choice(["a", "b", "z"])), bool(rng.random() < 0.5))
        for _ in range(count)
    ]


def expected_counts(sent: list[tuple[object, ...]]) -> dict[str, list[int]]:
    """What binning `sent` directly against the profile gives, missing values left out."""
    x = PROFILE.feature("x").numeric
    c = PROFILE.feature("c").categorical
    flag = PROFILE.feature("flag").numeric
    assert x is not None
    assert c is not None
    assert flag is not None
    xs = np.array([r[0] for r in sent if r[0] is not None], dtype=np.float64)
    flags = np.array([float(bool(r[2])) for r in sent])
    return {
        "x": profile.bin_counts(np.asarray(x.cuts), xs).tolist(),
        "c": [sum(r[1] == category for r in sent) for category in c.categories],
        "flag": profile.bin_counts(np.asarray(flag.cuts), flags).tolist(),
    }


def send(window: drift.Window, batch: list[tuple[object, ...]]) -> None:
    window.add(window.encode(batch))


def test_nothing_is_counted_before_rows_arrive_and_shares_are_the_profiles() -> None:
    binned = drift.Window(PROFILE, SIZE).cumulative()
    assert binned.rows == 0
    assert list(binned.expected) == ["x", "c", "flag"]  # the profile's order
    c = PROFILE.feature("c").categorical
    assert c is not None
    assert binned.expected["c"] == c.fractions
    for name, shares in binned.expected.items():
        assert binned.counts[name] == [0] * len(shares)


def test_rows_are_binned_at_reads_and_counted_once() -> None:
    window = drift.Window(PROFILE, SIZE)
    first, second = rows(4, 1), rows(3, 2)
    send(window, first)
    assert window.cumulative().rows == 4
    assert window.cumulative().counts == expected_counts(first)  # a second read adds nothing
    send(window, second)
    binned = window.cumulative()
    assert binned.rows == 7
    assert binned.counts == expected_counts(first + second)


def test_a_metrics_scrape_bins_too() -> None:
    window = drift.Window(PROFILE, SIZE)
    first, second = rows(8, 1), rows(8, 2)
    send(window, first)
    window.scores()  # /metrics read: bins these 8 before the next ones overwrite them
    send(window, second)
    binned = window.cumulative()
    assert binned.rows == 16
    assert binned.counts == expected_counts(first + second)


def test_counts_follow_rows_across_the_ring_buffer_wrapping_round() -> None:
    window = drift.Window(PROFILE, SIZE)
    sent: list[tuple[object, ...]] = []
    for seed, count in enumerate([7, 6, 9, 1, 10, 3]):  # every start position, and exact fits
        batch = rows(count, seed)
        send(window, batch)
        sent += batch
        binned = window.cumulative()
        assert binned.rows == len(sent)
        assert binned.counts == expected_counts(sent)


@pytest.mark.parametrize("batches", [[7, 8], [25], [3, 4, 5, 6], [4, 10]])
def test_more_rows_than_the_buffer_between_reads_bins_only_the_latest(
    batches: list[int],
) -> None:
    window = drift.Window(PROFILE, SIZE)
    head = rows(3, 100)
    send(window, head)
    window.cumulative()
    sent: list[tuple[object, ...]] = []
    for seed, count in enumerate(batches):
        batch = rows(count, seed)
        send(window, batch)
        sent += batch
    binned = window.cumulative()
    assert binned.rows == 3 + SIZE
    assert binned.counts == expected_counts(head + sent[-SIZE:])
    # The rows that come next are counted as usual.
    tail = rows(4, 200)
    send(window, tail)
    binned = window.cumulative()
    assert binned.rows == 3 + SIZE + 4
    assert binned.counts == expected_counts(head + sent[-SIZE:] + tail)


def test_a_batch_larger_than_the_window_keeps_its_latest_rows_for_psi() -> None:
    window = drift.Window(PROFILE, SIZE)
    send(window, rows(4, 1))
    batch = rows(SIZE + 13, 2)
    send(window, batch)
    assert window.filled == SIZE
    latest = expected_counts(batch[-SIZE:])
    x = PROFILE.feature("x").numeric
    assert x is not None
    assert window.scores()["x"] == pytest.approx(drift.psi(x.fractions, latest["x"]))


def test_missing_values_are_not_counted_for_their_feature() -> None:
    window = drift.Window(PROFILE, SIZE)
    send(window, [(None, "a", True), (0.5, "a", False)])
    binned = window.cumulative()
    assert binned.rows == 2
    assert sum(binned.counts["x"]) == 1
    assert sum(binned.counts["c"]) == 2
    assert binned.counts["c"][0] == 2
