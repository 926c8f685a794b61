import json

import pytest

from models.exceptions import RegistryError
from models.registry import ModelRegistry


def test_register_records_the_decision(fitted, tmp_path) -> None:
    registry = ModelRegistry(tmp_path)
    assert registry.current() is None
    accepted = registry.register(fitted)
    assert registry.versions() == [fitted.version]
    decision = registry.decisions()[-1]
    assert decision.accepted is accepted
    assert list(decision.reasons) == fitted.gate_failures
    current = registry.current()
    if accepted:
        assert current is not None and current.version == fitted.version
    else:
        assert current is None


def test_a_model_that_fails_its_gate_never_becomes_current(fitted, tmp_path) -> None:
    registry = ModelRegistry(tmp_path)
    saved = list(fitted.gate_failures)
    fitted.gate_failures = ["age 7: worse than baseline"]
    try:
        assert registry.register(fitted) is False
    finally:
        fitted.gate_failures = saved
    assert registry.current() is None
    assert registry.decisions()[-1].reasons == ("age 7: worse than baseline",)


def test_a_stored_version_is_never_written_over_by_another_model(
    fitted, tmp_path, caplog
) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(fitted)
    folder = tmp_path / fitted.version
    pickled = (folder / "model.pkl").read_bytes()

    # The same model again: kept as stored, and the decision recorded.
    registry.register(fitted)
    assert len(registry.decisions()) == 2
    assert (folder / "model.pkl").read_bytes() == pickled

    # Another model under the same id is refused, and the stored one kept.
    meta = json.loads((folder / "metadata.json").read_text())
    meta["data_fingerprint"] = "0" * 64
    (folder / "metadata.json").write_text(json.dumps(meta))
    (folder / "model.pkl").write_bytes(b"stored")
    with pytest.raises(RegistryError, match=r"its data_fingerprint differ\)"):
        registry.register(fitted)
    assert (folder / "model.pkl").read_bytes() == b"stored"
    assert len(registry.decisions()) == 2

    # A save cut short left no metadata: written over, with a warning.
    (folder / "metadata.json").unlink()
    with caplog.at_level("WARNING", logger="models.registry"):
        registry.register(fitted)
    assert registry.versions() == [fitted.version]
    assert "incomplete model folder (no metadata.json); written over" in caplog.text
