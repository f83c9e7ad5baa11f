import pytest

from anytask.errors import AnytaskError
from anytask.registry import Registry


def test_register_get_and_names_sorted():
    reg = Registry("thing")

    @reg.register("b", reference="paper B")
    class B:
        """The B thing."""

    reg.register("a", reference="paper A", summary="the A thing")(int)
    assert reg.get("b") is B
    assert reg.names() == ["a", "b"]
    assert reg.entry("b").summary == "The B thing."
    assert reg.entry("a").reference == "paper A"


def test_unknown_name_suggests_close_matches():
    from anytask.heads import HEADS

    with pytest.raises(AnytaskError, match="linear_probe"):
        HEADS.get("linear_prob")


def test_double_registration_is_an_error():
    reg = Registry("thing")
    reg.register("x", reference="r")(int)
    with pytest.raises(AnytaskError, match="twice"):
        reg.register("x", reference="r")(float)


def test_every_registered_entry_names_its_reference():
    from anytask.backbones import BACKBONES
    from anytask.heads import HEADS

    from anytask.merging import MERGES
    from anytask.optim import OPTIMIZERS

    for reg in (BACKBONES, HEADS, MERGES, OPTIMIZERS):
        for entry in reg.entries():
            assert entry.reference.strip(), entry.name
            assert entry.summary.strip(), entry.name
