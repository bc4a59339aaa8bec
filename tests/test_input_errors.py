"""Library functions name the argument that held a bad value (``InputError.arg``), not a command-line flag."""

from pathlib import Path

import pytest

from egolego.errors import InputError, MissingInput


def _build_source(tmp: Path):
    from egolego.data.build import BuildArgs

    BuildArgs(source="kinetics", root=tmp, out=tmp / "out").validate()


def _chat_base_url(tmp: Path):
    from egolego.curate.client import ChatClient

    ChatClient("ftp://example.org/v1", "m", tmp / "cache.sqlite")


def _read_json_data(tmp: Path):
    from egolego.data.llava_records import read_json

    read_json(tmp / "missing.json")


def _refuse_stale_out(tmp: Path):
    from egolego.checkpoints import refuse_stale

    (tmp / "checkpoints" / "step-0000001").mkdir(parents=True)
    refuse_stale(tmp, resume=False)


@pytest.mark.parametrize("call, arg, kind, fragment", [
    (_build_source, "source", InputError, "must be epic or ego4d, got 'kinetics'"),
    (_chat_base_url, "base_url", InputError, "must be an http(s):// URL, got 'ftp://example.org/v1'"),
    (_read_json_data, "data", MissingInput, "missing.json does not exist"),
    (_refuse_stale_out, "out", InputError, "holds checkpoints of an earlier run"),
])
def test_library_errors_name_the_argument(tmp_path, call, arg, kind, fragment):
    with pytest.raises(kind) as e:
        call(tmp_path)
    assert e.value.arg == arg and fragment in str(e.value)
    assert not str(e.value).startswith("-")  # the message does not spell the flag: the CLI adds it once
    assert e.value.with_flag() == f"--{arg.replace('_', '-')}: {e.value}"
    assert isinstance(e.value, ValueError)  # `except ValueError` callers keep working
