import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lipschitz_core import (
    KINDS,
    LipschitzLinear,
    direct_norm,
    freeze,
    lipschitz_bound,
    lipschitz_mlp,
)


@pytest.mark.parametrize("norm", KINDS)
def test_freeze_identical_outputs(norm):
    torch.manual_seed(0)
    model = lipschitz_mlp(5, 8, 2, 3, lipschitz_const=1.5, norm=norm)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4)
    model(torch.randn(4, 5))  # a training-mode step must not matter: freeze uses the eval-mode weights
    frozen = freeze(model)
    x = torch.randn(32, 5)
    torch.testing.assert_close(frozen(x), model.eval()(x), rtol=1e-6, atol=1e-6)
    assert [type(m).__name__ for m in frozen] == ["Linear", "GroupSort", "Linear", "GroupSort", "Linear"]
    assert lipschitz_bound(frozen, norm) == pytest.approx(lipschitz_bound(model, norm), rel=1e-6)
    assert model.training is False and isinstance(model[0], LipschitzLinear)  # original untouched


def test_freeze_direct_norm_and_single_layer():
    torch.manual_seed(0)
    model = nn.Sequential(direct_norm(nn.Linear(3, 4), kind="two", max_norm=0.3), nn.ReLU())
    frozen = freeze(model)
    assert "parametrizations" not in dict(frozen[0].named_children())
    x = torch.randn(6, 3)
    torch.testing.assert_close(frozen(x), model.eval()(x))
    assert model[0].parametrizations.weight.original.shape == (4, 3)  # original still parametrized
    single = LipschitzLinear(3, 2, kind="inf", lipschitz_const=0.1)
    assert type(freeze(single)) is nn.Linear


def test_state_dict_and_safetensors_round_trip(tmp_path):
    torch.manual_seed(0)
    model = lipschitz_mlp(4, 8, 1, 3, lipschitz_const=2.0, norm="two")
    model(torch.randn(2, 4))  # advance the power-iteration vectors (persistent buffers)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    torch.manual_seed(123)
    clone = lipschitz_mlp(4, 8, 1, 3, lipschitz_const=2.0, norm="two")
    clone.load_state_dict(load_file(str(path)))
    x = torch.randn(5, 4)
    torch.testing.assert_close(clone(x), model(x))  # training mode: same u, v -> same power step
    frozen = freeze(model)
    save_file(frozen.state_dict(), str(tmp_path / "frozen.safetensors"))
    plain = nn.Sequential(*[type(m)(m.in_features, m.out_features) if isinstance(m, nn.Linear) else m for m in frozen])
    plain.load_state_dict(load_file(str(tmp_path / "frozen.safetensors")))
    torch.testing.assert_close(plain(x), model.eval()(x))


@pytest.mark.slow
def test_frozen_model_compiles():
    torch.manual_seed(0)
    model = freeze(lipschitz_mlp(4, 16, 1, 3, lipschitz_const=1.0, norm="one-inf"))
    compiled = torch.compile(model)
    x = torch.randn(8, 4)
    torch.testing.assert_close(compiled(x), model(x))
