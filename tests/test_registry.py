import pytest

from anytask.core.errors import AnytaskError
from anytask.core.registry import Capabilities, Registry, method_table
from anytask.methods import all_registries


def test_register_get_and_names_sorted():
    reg = Registry("thing", family="test")

    @reg.register("b", reference="paper B", saveable=True)
    class B:
        """The B thing."""

    reg.register("a", reference="paper A", summary="the A thing", input="texts")(int)
    assert reg.get("b") is B
    assert reg.names() == ["a", "b"]
    assert reg.entry("b").summary == "The B thing."
    assert reg.entry("a").reference == "paper A"
    assert reg.caps("b").saveable and reg.caps("a").input == "texts" and not reg.caps("a").saveable


def test_unknown_name_suggests_close_matches():
    from anytask.methods.heads import HEADS

    with pytest.raises(AnytaskError, match="linear_probe"):
        HEADS.get("linear_prob")


def test_double_registration_and_unknown_capabilities_are_errors():
    reg = Registry("thing", family="test")
    reg.register("x", reference="r")(int)
    with pytest.raises(AnytaskError, match="twice"):
        reg.register("x", reference="r")(float)
    with pytest.raises(AnytaskError, match="capabilities are"):
        reg.register("y", reference="r", takes_text=True)
    with pytest.raises(AnytaskError, match="unknown input kind"):
        Capabilities(input="pixels")


def test_every_registered_entry_names_its_reference_and_summary():
    regs = [r for r in all_registries() if r.family != "test"]
    families = {r.family for r in regs}
    assert {"backbones", "data", "heads", "icl", "merging", "finetune", "continual"} <= families
    for reg in regs:
        for entry in reg.entries():
            assert entry.reference.strip(), entry.name
            assert entry.summary.strip(), entry.name


def test_list_names_every_method_of_every_family():
    table = method_table([r for r in all_registries() if r.family != "test"])
    for name in ["linear_probe", "icl", "concept_bottleneck", "prompt_tuning", "atlas", "ties", "tram", "tame",
                 "ewc", "icl_regressor", "linearized", "split-mnist", "sklearn", "minilm"]:
        assert f"`{name}`" in table, name
    assert "| concepts | head | `concept_bottleneck` |" in table  # the defining family, not the registry's


def test_learned_merges_are_refused_by_config_merges():
    from anytask.methods.merging import MERGES
    from anytask.methods.merging.methods import method_spec

    assert MERGES.caps("atlas").learned
    with pytest.raises(AnytaskError, match="fit_atlas"):
        method_spec("atlas", {})
