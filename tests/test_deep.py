"""The deep-learning arm on tiny inputs, on the CPU: the networks' shapes for any number of
phases, the batched augmentation, a loss that falls, byte-identical reruns, slice selection,
rigid registration recovering a known rotation and shift, and no leakage from validation
patients into any weight or development prediction."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from modeling.deep.arm import train_deep_arm  # noqa: E402
from modeling.deep.fit import augment, fit_network, predict  # noqa: E402
from modeling.deep.networks import MultiPhaseNet  # noqa: E402
from modeling.deep.settings import deep_settings  # noqa: E402
from modeling.deep.slices import StudySlices, crop_box, largest_cross_section, phase_slices, slice_window  # noqa: E402

CPU = torch.device("cpu")


@pytest.mark.parametrize("network, n_features", [("ResNet10", 128), ("ResNet18", 512), ("ResNet34", 512)])
@pytest.mark.parametrize("n_phases", [2, 3, 4])
def test_one_shared_backbone_and_a_feature_block_per_phase(network, n_phases, n_features):
    torch.manual_seed(0)
    net = MultiPhaseNet(network, n_phases, 3).eval()
    x = torch.randn(5, n_phases, 3, 32, 32)
    assert net(x).shape == (5, 2)
    assert net.deep_features(x).shape == (5, n_phases * n_features)
    assert net.fc.in_features == n_phases * n_features
    # phase p's features are the backbone's on phase p alone: the block order is the phase order
    alone = net.backbone(x[:, n_phases - 1])
    torch.testing.assert_close(net.deep_features(x)[:, -n_features:], alone)
    fused = MultiPhaseNet(network, n_phases, 3, n_tabular=7).eval()
    assert fused(x, torch.randn(5, 7)).shape == (5, 2) and fused.fc.in_features == n_phases * n_features + 7


def test_the_paper_resnet10_has_a_64_then_128_channel_residual_stage():
    net = MultiPhaseNet("ResNet10", 3, 3).backbone
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert convs[0].kernel_size == (7, 7) and convs[0].out_channels == 64
    assert [c.out_channels for c in convs[1:]] == [64] * 4 + [128] * 4  # 1 + 8 convolutions + the classifier


def test_augmentation_is_batched_seeded_and_the_identity_when_switched_off():
    x = torch.randn(6, 3, 3, 24, 24)
    s = deep_settings("quick")
    a = augment(x, torch.Generator().manual_seed(5), s)
    b = augment(x, torch.Generator().manual_seed(5), s)
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.allclose(a, x)
    # one transform per patient: its phases and slices move together (an identical input stays identical)
    same = x[:, :1].expand(-1, 3, -1, -1, -1).clone()
    moved = augment(same, torch.Generator().manual_seed(1), s)
    assert torch.equal(moved[:, 0], moved[:, 2])
    off = deep_settings("quick", rotate_deg=0.0, scale=0.0, shift=0.0, flip=False)
    torch.testing.assert_close(augment(x, torch.Generator().manual_seed(5), off), x, atol=1e-5, rtol=0)


def _toy(n=48, seed=0, size=24):
    """Patients whose label sets the amplitude of a texture inside a central disc."""
    rng = np.random.default_rng(seed)
    y = np.array([k % 2 for k in range(n)])
    x = rng.normal(0, 0.3, size=(n, 3, 3, size, size)).astype(np.float32)
    rr, cc = np.mgrid[:size, :size]
    disc = (rr - size / 2) ** 2 + (cc - size / 2) ** 2 < (size / 4) ** 2
    x[:, :, :, disc] += (1.0 + (0.2 + 1.2 * y[:, None, None, None]) *
                         rng.normal(size=(n, 3, 3, int(disc.sum())))).astype(np.float32)
    return torch.from_numpy(x), y


def test_training_lowers_the_loss_and_a_rerun_gives_the_same_bytes():
    x, y = _toy()
    s = deep_settings("quick", image_size=24, epochs=12, patience=12, batch_size=16)
    train, inner = np.arange(0, 36), np.arange(36, 48)
    runs = [fit_network(lambda: MultiPhaseNet("ResNet10", 3, 3), x, y, train, inner, s, seed=3, device=CPU)
            for _ in range(2)]
    log = runs[0].log
    assert log["train_loss"].iloc[-3:].mean() < log["train_loss"].iloc[:3].mean()
    assert list(log.columns) == ["epoch", "train_loss", "inner_loss", "inner_auc", "seconds"]
    a, b = (r.model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert predict(runs[0].model, x).tobytes() == predict(runs[1].model, x).tobytes()
    other = fit_network(lambda: MultiPhaseNet("ResNet10", 3, 3), x, y, train, inner, s, seed=4, device=CPU)
    assert not torch.equal(other.model.state_dict()["fc.weight"], a["fc.weight"])


def test_slice_window_crop_and_largest_cross_section():
    assert slice_window(0, 10, 3) == [0, 1, 2] and slice_window(9, 10, 3) == [7, 8, 9]
    assert slice_window(5, 10, 3) == [4, 5, 6] and slice_window(0, 2, 3) == [0, 0, 1]
    mask = np.zeros((20, 20, 9), dtype=np.uint8)
    mask[5:9, 5:9, 2] = 1
    mask[4:12, 4:10, 6] = 1           # the largest cross-section: slice 6
    assert largest_cross_section(mask) == 6
    r0, c0, side = crop_box(mask[..., 6], margin=0.25, min_side=4)
    assert side == 12 and r0 <= 4 and r0 + side >= 12 and c0 <= 4 and c0 + side >= 10
    image = np.random.default_rng(0).normal(size=mask.shape).astype(np.float32)
    img, msk, z, box = phase_slices(image, mask, deep_settings("quick", image_size=16))
    assert z == 6 and img.shape == (3, 16, 16) and msk.shape == (3, 16, 16)
    assert abs(float(img.mean())) < 1e-5 and abs(float(img.std()) - 1) < 1e-4
    assert msk[1].sum() > msk[0].sum()  # the middle slice is the largest cross-section


def test_quick_rigid_recovers_a_known_rotation_and_shift():
    ants = pytest.importorskip("ants")
    from modeling.deep.slices import register_rigid

    rng = np.random.default_rng(1)
    x, y, z = np.meshgrid(np.arange(64), np.arange(64), np.arange(32), indexing="ij")
    volume = np.zeros(x.shape)
    for _ in range(12):  # an asymmetric scene of blobs
        c, r = rng.uniform([12, 12, 6], [52, 52, 26]), rng.uniform(3, 8)
        volume += rng.uniform(0.5, 1.5) * np.exp(-((x - c[0]) ** 2 + (y - c[1]) ** 2) / (2 * r * r)
                                                 - (z - c[2]) ** 2 / (2 * (r / 2) ** 2))
    fixed = ants.from_numpy(volume * 100, spacing=(1.0, 1.0, 2.0))
    centre = [float(v) for v in np.array(fixed.shape) * np.array(fixed.spacing) / 2]
    known = ants.create_ants_transform(transform_type="Euler3DTransform", dimension=3, center=centre,
                                       parameters=(0.0, 0.0, math.radians(8.0), 2.5, -1.5, 0.0))
    moving = known.apply_to_image(fixed, reference=fixed, interpolation="linear")  # moving(p) = fixed(known(p))
    warped, transforms = register_rigid(fixed, moving, seed=1)
    found = ants.read_transform(transforms[0])       # warped(p) = moving(found(p)): found is known's inverse
    matrix = np.asarray(found.parameters[:9]).reshape(3, 3)
    assert abs(abs(math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))) - 8.0) < 0.5
    for offset in ([5.0, -3.0, 2.0], [-10.0, 8.0, -6.0]):
        p = list(np.array(centre) + np.array(offset))
        np.testing.assert_allclose(found.apply_to_point(known.apply_to_point(p)), p, atol=0.3)
    again = ants.read_transform(register_rigid(fixed, moving, seed=1)[1][0])
    assert list(again.parameters) == list(found.parameters)  # seeded: a rerun gives the same transform
    before = np.corrcoef(fixed.numpy().ravel(), moving.numpy().ravel())[0, 1]
    after = np.corrcoef(fixed.numpy().ravel(), warped.numpy().ravel())[0, 1]
    assert after > 0.995 and after > before


def _slices(x, ids):
    return StudySlices(np.array(ids, dtype=object), ("AP", "PVP", "DP"), x.numpy(),
                       np.zeros(x.shape, dtype=np.uint8), len(ids), 0)


def test_validation_patients_never_touch_a_weight_or_a_development_prediction():
    x, y = _toy(n=40, seed=2, size=16)
    ids = [f"P{k:03d}" for k in range(40)]
    dev = np.arange(40) < 28
    fold = np.where(dev, np.arange(40) % 4 + 1, 0)
    tab = pd.DataFrame(np.random.default_rng(3).normal(size=(40, 4)), columns=list("abcd"))
    s = deep_settings("quick", image_size=16, epochs=3, patience=3, fusion_epochs=2, batch_size=8,
                      networks=("ResNet10", "ResNet18"))
    oof_tab = {k: tab for k in range(1, 5)}
    first = train_deep_arm(_slices(x, ids), y, fold, dev, s, seed=7, device="cpu", tabular=tab, oof_tabular=oof_tab)
    x2, y2, tab2 = x.clone(), y.copy(), tab.copy()
    x2[~torch.from_numpy(dev)] = torch.randn_like(x2[~torch.from_numpy(dev)]) * 3
    y2[~dev] = 1 - y2[~dev]
    tab2.loc[~dev] = 99.0
    second = train_deep_arm(_slices(x2, ids), y2, fold, dev, s, seed=7, device="cpu", tabular=tab2,
                            oof_tabular={k: tab2 for k in range(1, 5)})
    assert set(first.checkpoints) == {"ResNet10", "ResNet18", "DLRCR"}
    for name, state in first.checkpoints.items():
        assert all(torch.equal(state[k], second.checkpoints[name][k]) for k in state), name
    for model, scores in first.scores.items():
        assert scores[dev].tobytes() == second.scores[model][dev].tobytes(), model
        assert scores[~dev].tobytes() != second.scores[model][~dev].tobytes(), model  # the change did reach them
    pd.testing.assert_frame_equal(first.oof, second.oof)
    assert set(first.oof["model"]) == {f"DL-{first.best_network}", "DLRCR"}
    assert first.oof.groupby("model")["patient_id"].nunique().eq(28).all()
    assert first.deep_features.loc[dev].equals(second.deep_features.loc[dev])


@pytest.mark.parametrize("phases", [("AP", "PVP"), ("T1", "T2", "DWI", "ADC")])
def test_a_study_of_two_or_four_phases_trains_a_feature_block_per_phase(phases):
    """study.yaml may name other phases than AP/PVP/DP: the arm (networks, DLRCR, Score-CAM
    rows) follows the phases of the slices it is given."""
    n = 32
    x, y = _toy(n=n, seed=4, size=16)
    x = x[:, [k % 3 for k in range(len(phases))]].contiguous()   # as many phases as the study names
    masks = np.zeros(x.shape, dtype=np.uint8)
    masks[..., 4:12, 4:12] = 1
    ids = [f"P{k:03d}" for k in range(n)]
    dev = np.arange(n) < 24
    fold = np.where(dev, np.arange(n) // 2 % 4 + 1, 0)   # both labels in every fold
    tab = pd.DataFrame(np.random.default_rng(5).normal(size=(n, 3)), columns=list("abc"))
    s = deep_settings("quick", image_size=16, epochs=2, patience=2, min_epochs=1, fusion_epochs=2, batch_size=8,
                      networks=("ResNet10",))
    slices = StudySlices(np.array(ids, dtype=object), phases, x.numpy(), masks, n, 0)
    result = train_deep_arm(slices, y, fold, dev, s, seed=3, device="cpu", tabular=tab, oof=False)
    assert result.checkpoints["ResNet10"]["fc.weight"].shape == (2, len(phases) * 128)
    assert result.checkpoints["DLRCR"]["fc.weight"].shape == (2, len(phases) * 128 + 3)
    blocks = [c for c in result.deep_features.columns if c != "patient_id"]
    assert len(blocks) == len(phases) * 128 and [c.split("_")[1] for c in blocks[::128]] == list(phases), blocks[:3]
    assert {"DL-ResNet10", "DLRCR"} <= set(result.scores)
