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
