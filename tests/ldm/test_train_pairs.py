"""``ldm.train_pairs``: the diffusion model trains on a fixed, nested subset of the manifest's training pairs."""

import pytest

from egolego.ldm.data import LegoPairs
from egolego.synth.pairs import pairs_from_egosynth


@pytest.fixture(scope="module")
def oracle_pairs(small_dataset, tmp_path_factory):
    return pairs_from_egosynth(small_dataset, tmp_path_factory.mktemp("pairs"), size=32).parent


def test_a_limit_keeps_that_many_training_pairs_nested_and_in_manifest_order(oracle_pairs):
    full = LegoPairs(oracle_pairs, "train", mode="label", size=32)
    ids = [r["pair_id"] for r in full.rows]
    subsets = {k: [r["pair_id"] for r in LegoPairs(oracle_pairs, "train", mode="label", size=32, limit=k).rows]
               for k in (5, 10, 20)}
    assert {k: len(v) for k, v in subsets.items()} == {5: 5, 10: 10, 20: 20}
    assert set(subsets[5]) < set(subsets[10]) < set(subsets[20]) < set(ids)  # nested: fewer pairs, same pairs
    for v in subsets.values():
        assert v == [p for p in ids if p in set(v)]  # manifest order kept
    assert subsets[5] != ids[:5]  # a random subset, not the first videos
    assert [r["pair_id"] for r in LegoPairs(oracle_pairs, "train", mode="label", size=32, limit=0).rows] == ids
    assert len(LegoPairs(oracle_pairs, "train", mode="label", size=32, limit=10**6).rows) == len(ids)
    assert subsets[10] == [r["pair_id"] for r in LegoPairs(oracle_pairs, "train", mode="label", size=32, limit=10).rows]
