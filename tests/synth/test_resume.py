"""A killed ``egolego synth`` resumes where it stopped and ends with the same files as a clean run."""

import pytest

from egolego.synth import dataset as ds


def test_resume_after_crash(tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    ds.generate(ds.SynthArgs(out=clean, actions=30, size=32, seed=9, formats=("epic",), workers=1), progress=False)

    out = tmp_path / "crashed"
    real = ds._render_task
    calls = []

    def dying(job):
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the process were killed after two videos
        calls.append(job[0].index)
        return real(job)

    monkeypatch.setattr(ds, "_render_task", dying)
    with pytest.raises(KeyboardInterrupt):
        ds.generate(ds.SynthArgs(out=out, actions=30, size=32, seed=9, formats=("epic",), workers=1), progress=False)
    assert not (out / "egosynth.json").exists() and len(list((out / ".parts").glob("0*.json"))) == 2

    rerun = []
    monkeypatch.setattr(ds, "_render_task", lambda job: (rerun.append(job[0].index), real(job))[1])
    ds.generate(ds.SynthArgs(out=out, actions=30, size=32, seed=9, formats=("epic",), workers=1), progress=False)
    assert not set(rerun) & set(calls)  # finished videos were not rendered again
    for f in ("truth.jsonl", "epic/EPIC_100_train.csv", "epic/EPIC_100_validation.csv"):
        assert (out / f).read_bytes() == (clean / f).read_bytes()
    assert not (out / ".parts").exists()
