"""The deep-learning arm on tiny inputs, on the CPU: the networks' shapes for any number of
phases and both stems, the flips and quarter turns, a loss that falls, byte-identical reruns,
slice selection at a fixed field of view with the liver-background normalisation, rigid
registration recovering a known rotation and shift, out-of-fold predictions for every network
and DLRCR, and no leakage from validation patients into any weight or development prediction."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from dlr.modeling.deep.arm import Partner, network_input, train_deep_arm  # noqa: E402
from dlr.modeling.deep.fit import augment, dihedral, fit_network, predict, slice_samples  # noqa: E402
from dlr.modeling.deep.networks import MultiPhaseNet  # noqa: E402
from dlr.modeling.deep.settings import deep_settings  # noqa: E402
from dlr.modeling.deep.slices import (StudySlices, background_level, crop_box, largest_cross_section,  # noqa: E402
                                  phase_slices, resegment, slice_window)

CPU = torch.device("cpu")


@pytest.mark.parametrize("network, depth_features", [("ResNet10", 2), ("ResNet18", 8), ("ResNet34", 8)])
@pytest.mark.parametrize("n_phases", [2, 3, 4])
@pytest.mark.parametrize("stem", ["small", "paper"])
def test_the_phases_are_the_channels_of_one_image(network, n_phases, depth_features, stem):
    torch.manual_seed(0)
    width = 8
    net = MultiPhaseNet(network, n_phases, stem=stem, width=width).eval()
    x = torch.randn(5, n_phases, 32, 32)
    assert net(x).shape == (5, 2)
    assert net.deep_features(x).shape == (5, depth_features * width)
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == n_phases
    assert first.kernel_size == ((3, 3) if stem == "small" else (7, 7))
    assert first.stride == ((1, 1) if stem == "small" else (2, 2))
    # the small stem keeps the resolution; the paper's (stride 2 and max pooling) divides it by 4
    grid = 32 // (2 if network == "ResNet10" else 8) // (1 if stem == "small" else 4)
    assert net.backbone.feature_map(x).shape[-1] == max(grid, 1)


def test_tumour_pooling_averages_the_last_stage_over_the_mask_channel():
    torch.manual_seed(1)
    net = MultiPhaseNet("ResNet10", 3, width=4, pool="tumour").eval()
    x = torch.randn(2, 3, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:8, 4:8] = 1
    feats = net.deep_features(torch.cat([x, mask], 1))
    fmap = net.backbone.feature_map(x)          # 8 x 8: the mask covers cells 2-3
    torch.testing.assert_close(feats[:, :8], fmap.mean(dim=(-2, -1)))
    torch.testing.assert_close(feats[:, 8:], fmap[..., 2:4, 2:4].mean(dim=(-2, -1)))


def test_the_paper_resnet10_has_a_64_then_128_channel_residual_stage():
    net = MultiPhaseNet("ResNet10", 3, stem="paper", width=64).backbone
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert convs[0].kernel_size == (7, 7) and convs[0].out_channels == 64
    assert [c.out_channels for c in convs[1:]] == [64] * 4 + [128] * 4  # 1 + 8 convolutions + the classifier


def test_flips_and_quarter_turns_permute_pixels_and_are_seeded():
    x = torch.randn(40, 3, 8, 8)
    a = augment(x, torch.Generator().manual_seed(5))
    b = augment(x, torch.Generator().manual_seed(5))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    # no interpolation: every sample keeps exactly its values, and its channels move together
    for k in range(40):
        assert torch.equal(torch.sort(a[k].flatten()).values, torch.sort(x[k].flatten()).values)
        assert any(torch.equal(a[k], dihedral(x[k], t)) for t in range(8))
    # the eight transforms are distinct and form the group (each has an inverse among them)
    single = torch.arange(16.0).reshape(1, 4, 4)
    views = [dihedral(single, t) for t in range(8)]
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    assert all(any(torch.equal(dihedral(v, u), single) for u in range(8)) for v in views)


def _toy(n=48, seed=0, size=24):
    """Patients whose label sets the amplitude of a texture inside a central disc (N, P, S, H, W)."""
    rng = np.random.default_rng(seed)
    y = np.array([k % 2 for k in range(n)])
    x = rng.normal(0, 0.3, size=(n, 3, 3, size, size)).astype(np.float32)
    rr, cc = np.mgrid[:size, :size]
    disc = (rr - size / 2) ** 2 + (cc - size / 2) ** 2 < (size / 4) ** 2
    x[:, :, :, disc] += (1.0 + (0.2 + 1.2 * y[:, None, None, None]) *
                         rng.normal(size=(n, 3, 3, int(disc.sum())))).astype(np.float32)
    return torch.from_numpy(x), y


def test_slice_samples_are_patient_major():
    x = torch.arange(2 * 3 * 4 * 1 * 1, dtype=torch.float32).reshape(2, 3, 4, 1, 1)   # N=2, P=3, S=4
    samples = slice_samples(x)
    assert samples.shape == (8, 3, 1, 1)
    assert torch.equal(samples[5], x[1, :, 1])     # patient 1, slice 1


def test_training_lowers_the_loss_and_a_rerun_gives_the_same_bytes():
    x, y = _toy()
    s = deep_settings("quick", steps=40, batch_size=16, width=8)
    train = np.arange(0, 36)
    make = lambda: MultiPhaseNet("ResNet10", 3, width=8)  # noqa: E731
    runs = [fit_network(make, x, y, train, s, seed=3, device=CPU, held_out=np.arange(36, 48)) for _ in range(2)]
    log = runs[0].log
    assert runs[0].n_steps == 40 and log["step"].iloc[-1] == 40
    assert log["train_loss"].iloc[-2:].mean() < log["train_loss"].iloc[:2].mean()
    assert list(log.columns) == ["epoch", "step", "train_loss", "held_out_loss", "held_out_auc", "seconds"]
    assert log["held_out_auc"].iloc[-1] > 0.8     # the toy's texture is learnt
    a, b = (r.model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert predict(runs[0].model, x).tobytes() == predict(runs[1].model, x).tobytes()
    other = fit_network(make, x, y, train, s, seed=4, device=CPU)
    assert not torch.equal(other.model.state_dict()["fc.weight"], a["fc.weight"])


def test_test_time_augmentation_averages_the_eight_views():
    x, _ = _toy(n=4, size=16)
    net = MultiPhaseNet("ResNet10", 3, width=8).eval()
    from dlr.modeling.deep.fit import log_odds

    z = log_odds(net, x, tta=True)
    with torch.no_grad():
        views = [net(dihedral(slice_samples(x), t)) for t in range(8)]
    manual = torch.stack([(v[:, 1] - v[:, 0]).double() for v in views]).mean(0).reshape(4, 3).mean(1)
    np.testing.assert_allclose(z, manual.numpy(), rtol=0, atol=1e-6)


def test_slice_window_crop_and_largest_cross_section():
    assert slice_window(0, 10, 3) == [0, 1, 2] and slice_window(9, 10, 3) == [7, 8, 9]
    assert slice_window(5, 10, 3) == [4, 5, 6] and slice_window(0, 2, 3) == [0, 0, 1]
    mask = np.zeros((40, 40, 9), dtype=np.uint8)
    mask[15:19, 15:19, 2] = 1
    mask[14:22, 14:20, 6] = 1           # the largest cross-section: slice 6
    assert largest_cross_section(mask) == 6
    r0, c0, side = crop_box(mask[..., 6], margin=0.25, min_side=4)
    assert side == 12 and r0 <= 14 and r0 + side >= 22 and c0 <= 14 and c0 + side >= 20
    # the paper's crop: the tumour's box, resized, z-scored
    image = np.random.default_rng(0).normal(size=mask.shape).astype(np.float32)
    img, msk, z, box = phase_slices(image, mask, deep_settings("quick", image_size=16, fov_mm=0, normalise="crop"))
    assert z == 6 and img.shape == (3, 16, 16) and msk.shape == (3, 16, 16)
    assert abs(float(img.mean())) < 1e-5 and abs(float(img.std()) - 1) < 1e-4
    assert msk[1].sum() > msk[0].sum()  # the middle slice is the largest cross-section


def test_a_fixed_field_of_view_keeps_the_tumours_size_and_the_voxels_as_they_are():
    """Two tumours of different sizes: at a fixed field of view in mm their crops differ in
    tumour area as the tumours do, and at the target pixel size the values are the volume's
    own (no interpolation); divided by the liver around the tumour, the liver is ~0."""
    rng = np.random.default_rng(1)
    image = (100.0 + rng.normal(0, 1, size=(64, 64, 5))).astype(np.float32)   # "liver" at 100
    rr, cc = np.mgrid[:64, :64]
    areas = []
    for radius in (3, 8):
        mask = np.zeros(image.shape, dtype=np.uint8)
        mask[..., 2] = ((rr - 30) ** 2 + (cc - 33) ** 2 <= radius ** 2)
        tumour = image.copy()
        tumour[mask > 0] = 180.0
        s = deep_settings("quick", image_size=16, fov_mm=32.0, n_slices=1)
        img, msk, _, (r0, c0, side) = phase_slices(tumour, mask, s, spacing=(2.0, 2.0))
        assert side == 16 and img.shape == (1, 16, 16)
        level = background_level(tumour[..., 2], mask[..., 2], (2.0, 2.0), s.ring_mm)
        np.testing.assert_allclose(level, 100.0, atol=0.3)
        np.testing.assert_array_equal(img[0], tumour[r0:r0 + 16, c0:c0 + 16, 2] / np.float32(level) - 1)
        assert abs(float(np.median(img[0][msk[0] == 0]))) < 0.02 and float(img[0][msk[0] > 0].mean()) > 0.75
        areas.append(int(msk.sum()))
    assert areas[1] > 5 * areas[0]
    # other voxel sizes are resampled to the same field of view
    img, msk, _, (_, _, side) = phase_slices(image, mask, deep_settings("quick", image_size=16, fov_mm=32.0,
                                                                        n_slices=1), spacing=(1.0, 1.0))
    assert side == 32 and img.shape == (1, 16, 16)


def test_quick_rigid_recovers_a_known_rotation_and_shift():
    ants = pytest.importorskip("ants")
    from dlr.modeling.deep.slices import register_rigid

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


def _slices(x, ids, masks=None):
    return StudySlices(np.array(ids, dtype=object), ("AP", "PVP", "DP")[:x.shape[1]], x.numpy(),
                       np.zeros(x.shape, dtype=np.uint8) if masks is None else masks, len(ids), 0)


def _disc_masks(x):
    masks = np.zeros(x.shape, dtype=np.uint8)
    size = x.shape[-1]
    rr, cc = np.mgrid[:size, :size]
    masks[..., (rr - size / 2) ** 2 + (cc - size / 2) ** 2 < (size / 4) ** 2] = 1
    return masks


def _textured_tumours(n=2, seed=0):
    """n patients, 3 phases of 3 slices: a 12 x 12 tumour of texture (1 +- 0.05) on each, with a
    dark 3 x 3 core (necrosis, 0.2) in the first patient's middle slice."""
    rng = np.random.default_rng(seed)
    images = rng.normal(1.0, 0.05, (n, 3, 3, 20, 20)).astype(np.float32)
    masks = np.zeros((n, 3, 20, 20), dtype=np.uint8)
    masks[:, :, 4:16, 4:16] = 1
    images[0, :, 1, 8:11, 8:11] = 0.2
    return images, masks


def test_resegmentation_fills_and_drops_a_necrotic_core_and_keeps_the_texture():
    images, masks = _textured_tumours()
    out, kept = resegment(images, masks, 2.0)
    core = np.zeros((3, 20, 20), dtype=bool)
    core[1, 8:11, 8:11] = True
    assert not kept[0][core].any()                       # the core is left out of the pooling
    for p in range(3):                                   # and set to the tumour's median on every phase
        assert np.allclose(out[0, p][core], np.median(images[0, p][masks[0] > 0]))
    assert kept[0].sum() > 0.75 * masks[0].sum()         # the texture stays (2 robust SDs on 3 phases)
    assert not kept[:, masks[0] == 0].any()              # nothing outside the tumour enters the mask
    outside = np.broadcast_to(masks[:, None] == 0, images.shape)
    assert np.array_equal(out[outside], images[outside])  # nor is any pixel outside it changed
    # per patient: changing the second patient's pixels leaves the first's result as it was
    other = images.copy()
    other[1] = other[1] * 3 + 1
    out2, kept2 = resegment(other, masks, 2.0)
    assert np.array_equal(out2[0], out[0]) and np.array_equal(kept2[0], kept[0])
    # a wider band keeps more, and the input is not modified
    assert resegment(images, masks, 3.0)[1].sum() > kept.sum()
    assert images[0, 0, 1, 9, 9] == np.float32(0.2)


def test_resegmentation_leaves_a_flat_phase_and_a_tiny_tumour_whole():
    images, masks = _textured_tumours(n=1)
    images[0, 1] = 1.0                                   # a flat phase (MAD 0) removes nothing
    images[0, 1, 1, 8:11, 8:11] = 0.2
    flat_only = images.copy()
    flat_only[0, [0, 2]] = 1.0
    out, kept = resegment(flat_only, masks, 2.0)
    assert np.array_equal(kept, masks) and np.array_equal(out, flat_only)
    tiny = np.zeros_like(masks)
    tiny[0, 1, 8:10, 8:10] = 1                           # 4 pixels, two outlying: kept whole
    spiky = images.copy()
    spiky[0, :, 1, 8, 8] = 5.0
    spiky[0, :, 1, 9, 9] = -5.0
    assert np.array_equal(resegment(spiky, tiny, 2.0)[1], tiny)


def test_the_network_input_carries_the_resegmented_tumour_as_its_pooling_mask():
    images, masks = _textured_tumours()
    slices = StudySlices(np.array(["A", "B"], dtype=object), ("AP", "PVP", "DP"), images,
                         np.repeat(masks[:, None], 3, axis=1), 2, 0)
    plain = network_input(slices, deep_settings("quick", resegment=0))
    assert torch.equal(plain[:, :3], torch.from_numpy(images)) and torch.equal(plain[:, 3], torch.from_numpy(
        masks.astype(np.float32)))
    cleaned = network_input(slices, deep_settings("quick", resegment=2.0))
    out, kept = resegment(images, masks, 2.0)
    assert torch.equal(cleaned[:, :3], torch.from_numpy(out))
    assert torch.equal(cleaned[:, 3], torch.from_numpy(kept.astype(np.float32)))
    assert "re-segmented" in deep_settings("quick").recipe()
    assert "re-segmented" not in deep_settings("quick", resegment=0).recipe()
    for bad in (-1, "two", True):
        with pytest.raises(ValueError, match="resegment"):
            deep_settings("quick", resegment=bad)


TINY = {"steps": 12, "batch_size": 8, "width": 4, "tta": True}


def test_validation_patients_never_touch_a_weight_or_a_development_prediction():
    x, y = _toy(n=40, seed=2, size=16)
    ids = [f"P{k:03d}" for k in range(40)]
    dev = np.arange(40) < 28
    fold = np.where(dev, np.arange(40) % 4 + 1, 0)
    rng = np.random.default_rng(3)
    partner = Partner("RCR", rng.uniform(0.05, 0.95, 40), np.where(dev, rng.uniform(0.05, 0.95, 40), np.nan))
    s = deep_settings("quick", networks=("ResNet10", "ResNet18"), **TINY)
    masks = _disc_masks(x)
    first = train_deep_arm(_slices(x, ids, masks), y, fold, dev, s, seed=7, device="cpu", partner=partner)
    x2, y2 = x.clone(), y.copy()
    x2[~torch.from_numpy(dev)] = torch.randn_like(x2[~torch.from_numpy(dev)]) * 3
    y2[~dev] = 1 - y2[~dev]
    partner2 = Partner("RCR", np.where(dev, partner.scores, 0.5), partner.oof)
    second = train_deep_arm(_slices(x2, ids, masks), y2, fold, dev, s, seed=7, device="cpu", partner=partner2)
    assert set(first.checkpoints) == {"ResNet10", "ResNet18"}
    for name, state in first.checkpoints.items():
        assert all(torch.equal(state[k], second.checkpoints[name][k]) for k in state), name
    assert set(first.scores) == {"DL-ResNet10", "DL-ResNet18", "DLRCR"}
    for model, scores in first.scores.items():
        assert scores[dev].tobytes() == second.scores[model][dev].tobytes(), model
        assert scores[~dev].tobytes() != second.scores[model][~dev].tobytes(), model  # the change did reach them
    assert first.oof.equals(second.oof)
    # every deep model, DLRCR included, has an out-of-fold score for every development patient
    assert set(first.oof["model"]) == {"DL-ResNet10", "DL-ResNet18", "DLRCR"}
    assert first.oof.groupby("model")["patient_id"].nunique().eq(28).all()
    assert first.deep_features.loc[dev].equals(second.deep_features.loc[dev])
    assert first.fusion["partner"] == "RCR" and first.fusion["n"] == 28
    # the best network is the one with the highest out-of-fold AUC
    table = first.networks.set_index("network")
    nets = table.loc[["DL-ResNet10", "DL-ResNet18"], "oof_auc"]
    assert f"DL-{first.best_network}" == nets.idxmax() and bool(table.loc[nets.idxmax(), "best"])


def test_an_out_of_fold_score_comes_from_a_fit_without_its_fold():
    """Flipping fold 1's outcomes leaves fold 1's out-of-fold scores as they were (the fit that
    scores them never saw fold 1) and moves the other folds' (their fits trained on fold 1)."""
    x, y = _toy(n=32, seed=5, size=16)
    ids = np.array([f"P{k:03d}" for k in range(32)], dtype=object)
    dev = np.arange(32) < 28
    fold = np.where(dev, np.arange(32) // 2 % 4 + 1, 0)   # both outcomes in every fold
    s = deep_settings("quick", networks=("ResNet10",), **TINY)
    first = train_deep_arm(_slices(x, list(ids), _disc_masks(x)), y, fold, dev, s, seed=2, device="cpu")
    y2 = y.copy()
    y2[fold == 1] = 1 - y2[fold == 1]
    second = train_deep_arm(_slices(x, list(ids), _disc_masks(x)), y2, fold, dev, s, seed=2, device="cpu")
    a, b = (r.oof.set_index("patient_id")["y_score"] for r in (first, second))
    in_fold1, others = list(ids[fold == 1]), list(ids[dev & (fold != 1)])
    assert a.loc[in_fold1].to_numpy().tobytes() == b.loc[in_fold1].to_numpy().tobytes()
    assert not np.array_equal(a.loc[others].to_numpy(), b.loc[others].to_numpy())
    assert "DLRCR" not in set(first.oof["model"])   # no partner: no DLRCR


@pytest.mark.parametrize("phases", [("AP", "PVP"), ("T1", "T2", "DWI", "ADC")])
def test_a_study_of_two_or_four_phases_trains_on_that_many_channels(phases):
    """study.yaml may name other phases than AP/PVP/DP: the arm (networks, Score-CAM rows)
    follows the phases of the slices it is given."""
    n = 32
    x, y = _toy(n=n, seed=4, size=16)
    x = x[:, [k % 3 for k in range(len(phases))]].contiguous()   # as many phases as the study names
    masks = _disc_masks(x)
    ids = [f"P{k:03d}" for k in range(n)]
    dev = np.arange(n) < 24
    fold = np.where(dev, np.arange(n) // 2 % 4 + 1, 0)   # both labels in every fold
    s = deep_settings("quick", networks=("ResNet10",), **TINY)
    slices = StudySlices(np.array(ids, dtype=object), phases, x.numpy(), masks, n, 0)
    result = train_deep_arm(slices, y, fold, dev, s, seed=3, device="cpu", oof=False)
    conv = next(v for k, v in result.checkpoints["ResNet10"].items() if k.endswith("weight") and v.ndim == 4)
    assert conv.shape[1] == len(phases)          # the mask channel is pooled over, never convolved
    assert result.checkpoints["ResNet10"]["fc.weight"].shape == (2, 2 * 2 * 4)   # global + tumour pooling
    assert len(result.deep_features.columns) == 1 + 16
    assert set(result.scores) == {"DL-ResNet10"} and result.oof is None
    assert all(len(r["cams"]) == len(phases) for r in result.cam_rows)


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_the_recipe_in_words_quotes_no_number_that_is_not_a_setting(profile):
    """The report's audit traces every number the methods print to the run's files; the recipe's
    words (models/deep/settings.json) may quote only the settings' own values (sizes such as
    3 x 3 and a stride aside): a constant such as the MAD's 1.4826 would be an untraceable number."""
    settings = deep_settings(profile)
    text = re.sub(r"\d+ x \d+|stride \d", "", settings.recipe())
    numbers = set(re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)?", text))
    values = {f"{v:g}" for v in settings.to_dict().values() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numbers and numbers <= values, numbers - values
