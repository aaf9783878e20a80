"""Score-CAM of the multi-phase network (modeling/deep/cam.py): a network trained on toy tumours
looks at the tumour, the maps are deterministic and explain one phase, and the three real IBSI
soft-tissue sarcoma cases give sane slices, maps and an overlay figure."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torchcam")
pytest.importorskip("monai")

import torch  # noqa: E402
from scipy.ndimage import binary_dilation  # noqa: E402

from core.stats.roc import rank_auc  # noqa: E402
from modeling.deep.cam import (CATEGORIES, _OnePhase, cam_mass_inside, choose_examples,  # noqa: E402
                               overlay_figure, score_cam, upsample_centred)
from modeling.deep.fit import fit_network, predict  # noqa: E402
from modeling.deep.networks import MultiPhaseNet  # noqa: E402
from modeling.deep.settings import deep_settings  # noqa: E402
from modeling.deep.slices import _read, phase_slices  # noqa: E402

from conftest import DATA  # noqa: E402

STS = DATA / "real" / "ibsi_sts_mr_ct_pet"
STS_CASES = ("STS_002", "STS_019", "STS_025")
MODALITIES = ("CT", "MR_T1", "PET")


def _toy_tumours(*, seed: int, size: int = 32, texture: float = 2.0, noise: float = 0.5):
    """80 toy patients, 3 phases x 3 slices x size x size: Gaussian noise, a bright disc tumour
    (radius 5-8 px, in the mask) whose inside is strongly textured (+-texture per pixel) for
    label 1 and smooth for label 0, and a dark, always textured decoy disc of the same sizes
    elsewhere; the same discs in every phase and slice. Patients 0-59 (30 per label) train,
    60-79 (10 per label) stop the fit.

    The decoy is what makes the map's test able to fail: without it an untrained network's map
    already falls on the only high-contrast object almost as much as a trained one's (0.31-0.34
    of the mass inside the tumour against 0.35-0.37, data seeds 0 and 1), so the test could not
    tell learning from image contrast.
    Returns the slices (torch), the tumour and decoy masks (uint8, same shape) and the labels."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([rng.permutation(np.repeat([0, 1], 30)), rng.permutation(np.repeat([0, 1], 10))])
    rows, cols = np.mgrid[:size, :size]
    x = np.empty((len(y), 3, 3, size, size), dtype=np.float32)
    tumour, decoy = np.zeros(x.shape, dtype=np.uint8), np.zeros(x.shape, dtype=np.uint8)
    for i, label in enumerate(y):
        while True:  # two discs inside the image, apart
            radius = rng.uniform(5, 8, 2)
            centres = [rng.uniform(r + 1, size - r - 1, 2) for r in radius]
            if np.hypot(*(centres[0] - centres[1])) >= radius.sum() + 3:
                break
        disc, dark = ((rows - c[0]) ** 2 + (cols - c[1]) ** 2 <= r ** 2 for c, r in zip(centres, radius))
        for p in range(3):
            image = rng.normal(0.0, noise, (3, size, size))
            inside = texture * rng.choice([-1.0, 1.0], (3, int(disc.sum()))) if label else 0.0
            image[:, disc] += 1.0 + inside
            image[:, dark] += -1.0 + texture * rng.choice([-1.0, 1.0], (3, int(dark.sum())))
            x[i, p] = image
            tumour[i, p][:, disc] = 1
            decoy[i, p][:, dark] = 1
    return torch.from_numpy(x), tumour, decoy, y


def _mass_fractions(model, x, masks, patients) -> np.ndarray:
    """(patients, phases, masks): the fraction of each phase's map inside each mask (dilated by 2)."""
    return np.array([[[cam_mass_inside(cam, m[i, p, 1], dilate=2) for m in masks]
                      for p, cam in enumerate(score_cam(model, x[i], phase=p, batch_size=128) for p in range(3))]
                     for i in patients])


def test_a_trained_network_looks_at_the_tumour():
    x, tumour, decoy, y = _toy_tumours(seed=0)
    settings = deep_settings("quick", image_size=32, epochs=25, patience=25, lr=3e-3)
    fitted = fit_network(lambda: MultiPhaseNet("ResNet10", 3, 3), x, y, np.arange(60), np.arange(60, 80), settings,
                         seed=0, device=torch.device("cpu"))
    auc = rank_auc(y[60:], predict(fitted.model, x[60:]))
    assert auc > 0.8, f"the network did not learn the texture (stopping-split AUC {auc:.3f})"

    torch.manual_seed(0)                    # fit_network's starting point: the same weights, untrained
    untrained = MultiPhaseNet("ResNet10", 3, 3)
    cases = np.flatnonzero(y[60:] == 1) + 60   # held-out label-1 patients: their texture is the evidence
    trained = _mass_fractions(fitted.model, x, (tumour, decoy), cases).mean(axis=0)   # (phase, mask)
    before = _mass_fractions(untrained, x, (tumour,), cases).mean(axis=0)
    area = np.mean([binary_dilation(tumour[i, 0, 1], iterations=2).mean() for i in cases])
    # The bar first asked for was > 0.5 of the mass inside the dilated tumour. At 32 px the last
    # stage of ResNet-10 is a 4 x 4 map whose units all see the whole image, so that bar is out
    # of reach: the tumour itself pooled to 4 x 4 and upsampled back puts only 0.66-0.71 of its
    # mass inside, and Score-CAM's weights are near uniform (at most ~2.5 / 128), so the map is
    # close to the mean of the broad activation maps. The trained network's maps put 0.30-0.33
    # inside (data seeds 0-2; 0.32 for seed 0), 1.6-1.9 times the dilated tumour's area fraction
    # (0.18-0.19), against 0.16-0.22 on the equally textured decoy and 0.24-0.26 before
    # training. Those three claims are asserted, per phase.
    for p in range(3):
        inside, on_decoy = trained[p]
        assert inside > 1.5 * area, f"phase {p}: {inside:.3f} of the map inside, tumour area {area:.3f}"
        assert inside > on_decoy, f"phase {p}: {inside:.3f} inside the tumour, {on_decoy:.3f} on the decoy"
        assert inside > before[p, 0], f"phase {p}: {inside:.3f} inside after training, {before[p, 0]:.3f} before"


def _cropped_tumours(*, seed: int, size: int = 48, texture: float = 2.0, noise: float = 0.5):
    """80 toy patients as the pipeline crops them (modeling/deep/slices.py, quick profile: the
    tumour's box grown by 25% on each side, resized to 48 px): a disc of radius 10-15 px near the
    centre of each crop, textured for label 1 and smooth for label 0, over a noisy background
    with a faint smooth gradient (the parenchyma) in each phase. Patients 0-59 train, 60-79 stop
    the fit. Returns the slices (torch), the tumour masks (uint8, same shape) and the labels."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([rng.permutation(np.repeat([0, 1], 30)), rng.permutation(np.repeat([0, 1], 10))])
    rows, cols = np.mgrid[:size, :size]
    x = np.empty((len(y), 3, 3, size, size), dtype=np.float32)
    tumour = np.zeros(x.shape, dtype=np.uint8)
    for i, label in enumerate(y):
        radius = rng.uniform(10, 15)
        centre = size / 2 + rng.uniform(-3, 3, 2)
        disc = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2
        for p in range(3):
            slope = rng.normal(0, 0.01, 2)
            image = rng.normal(0.0, noise, (3, size, size)) + slope[0] * (rows - size / 2) + slope[1] * (cols - size / 2)
            inside = texture * rng.choice([-1.0, 1.0], (3, int(disc.sum()))) if label else 0.0
            image[:, disc] += 1.0 + inside
            x[i, p] = image
            tumour[i, p][:, disc] = 1
    return torch.from_numpy(x), tumour, y


def test_on_crops_like_the_pipelines_most_of_the_map_lies_in_the_dilated_tumour():
    """The acceptance's check on the crops the pipeline makes (48 px, the quick profile): for each
    of the three phases, more than half of the trained network's Score-CAM mass lies inside the
    tumour mask dilated by 2 px, more than the region's share of the image (what a flat map would
    put there) and more than the untrained network's map.

    Measured (data seeds 0 and 1): 0.53-0.54 of the mass inside (medians 0.52-0.54), against the
    region's 0.28-0.29 of the image and 0.45-0.48 for the untrained network (whose broad maps
    already favour the centre of the crop, where the tumour is); stopping-split AUC 1.0. On the
    165-patient synthetic study's own crops `dlr train` measured 0.46-0.75 per map
    (RUN/models/deep/scorecam.csv), each above its region's 0.31-0.51."""
    x, tumour, y = _cropped_tumours(seed=0)
    settings = deep_settings("quick", image_size=48, epochs=25, patience=25, lr=3e-3)
    fitted = fit_network(lambda: MultiPhaseNet("ResNet10", 3, 3), x, y, np.arange(60), np.arange(60, 80), settings,
                         seed=0, device=torch.device("cpu"))
    auc = rank_auc(y[60:], predict(fitted.model, x[60:]))
    assert auc > 0.8, f"the network did not learn the texture (stopping-split AUC {auc:.3f})"
    torch.manual_seed(0)
    untrained = MultiPhaseNet("ResNet10", 3, 3)
    cases = np.flatnonzero(y[60:] == 1) + 60
    trained = _mass_fractions(fitted.model, x, (tumour,), cases)[:, :, 0]   # (patient, phase)
    before = _mass_fractions(untrained, x, (tumour,), cases)[:, :, 0]
    area = np.mean([binary_dilation(tumour[i, 0, 1], iterations=2).mean() for i in cases])
    for p in range(3):
        inside = trained[:, p].mean()
        assert inside > 0.5, f"phase {p}: {inside:.3f} of the map inside the dilated tumour"
        assert inside > area + 0.05, f"phase {p}: {inside:.3f} inside, the region's share {area:.3f}"
        assert inside > before[:, p].mean(), f"phase {p}: {inside:.3f} after training, {before[:, p].mean():.3f} before"
        assert np.median(trained[:, p]) > 0.5, f"phase {p}: median {np.median(trained[:, p]):.3f}"


def _seeded_net(*, n_tabular: int = 0) -> MultiPhaseNet:
    torch.manual_seed(0)
    return MultiPhaseNet("ResNet10", 3, 3, n_tabular=n_tabular)


def test_score_cam_is_deterministic_and_leaves_the_model_as_it_was():
    model = _seeded_net(n_tabular=2)
    model.train()
    gen = torch.Generator().manual_seed(1)
    x, tab = torch.randn(3, 3, 32, 32, generator=gen), torch.randn(2, generator=gen)
    first = score_cam(model, x, phase=1, tabular=tab)
    second = score_cam(model, x, phase=1, tabular=tab)
    assert first.shape == (32, 32) and first.dtype == np.float64
    assert np.array_equal(first, second)
    assert first.min() == 0.0 and first.max() == 1.0
    assert all(m.training for m in model.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    with pytest.raises(ValueError, match="tabular"):
        score_cam(model, x, phase=0)
    with pytest.raises(ValueError, match="phase 3"):
        score_cam(model, x, phase=3, tabular=tab)


def test_the_one_phase_view_is_the_network():
    """The hooked model sees one phase's slices and still computes the network's logits."""
    model = _seeded_net(n_tabular=2).eval()
    gen = torch.Generator().manual_seed(2)
    x, tab = torch.randn(3, 3, 32, 32, generator=gen), torch.randn(1, 2, generator=gen)
    with torch.no_grad():
        expected = model(x[None], tab)
        for p in range(3):
            torch.testing.assert_close(_OnePhase(model, x, p, tab)(x[p:p + 1]), expected, atol=1e-5, rtol=1e-5)


def test_upsample_centred_puts_each_cell_on_its_receptive_field():
    """Cell i of a stride-8 map lands on pixel 8 i, where the gradient of ResNet-10's last stage
    centres (31.7 for cell 4 of an 8 x 8 map at 64 px, against 35.5 for the usual resize)."""
    low = torch.zeros(1, 1, 4, 4)
    low[0, 0, 1, 2] = 1.0
    up = upsample_centred(low, (32, 32))[0, 0]
    assert up.shape == (32, 32)
    assert divmod(int(up.argmax()), 32) == (8, 16) and float(up[8, 16]) == 1.0
    assert float(up[12, 16]) == pytest.approx(0.5) and float(up[16, 16]) == 0.0
    for shape, size in (((2, 1, 6, 6), (48, 48)), ((1, 1, 1, 1), (32, 32))):   # flat maps stay flat
        torch.testing.assert_close(upsample_centred(torch.full(shape, 0.3), size), torch.full((*shape[:2], *size), 0.3))


def test_cam_mass_inside():
    mask = np.zeros((20, 20), dtype=np.uint8)
    mask[8:12, 8:12] = 1
    assert cam_mass_inside(mask.astype(float), mask, dilate=2) == 1.0
    # a flat map: the dilated square's share of the pixels; two 4-connected steps grow the 4 x 4
    # square to 8 x 8 less 3 pixels at each corner
    assert cam_mass_inside(np.ones((20, 20)), mask, dilate=2) == pytest.approx(52 / 400)
    assert cam_mass_inside(np.ones((20, 20)), mask, dilate=0) == pytest.approx(16 / 400)
    assert np.isnan(cam_mass_inside(np.zeros((20, 20)), mask))
    with pytest.raises(ValueError, match="shape"):
        cam_mass_inside(np.ones((10, 10)), mask)


def test_choose_examples():
    ids = ["P5", "P1", "P2", "P3", "P4", "P0"]
    y_true = [1, 1, 0, 0, 1, 1]
    y_score = [0.9, 0.2, 0.1, 0.4, 0.9, 0.7]
    chosen = choose_examples(ids, y_true, y_score, 0.5)
    assert list(chosen) == list(CATEGORIES)
    # TP: 0.9 twice, the smaller id P4 wins; FN: only P1; TN: the lowest score; no false positive
    assert chosen == {"true positive": 4, "false negative": 1, "true negative": 2, "false positive": None}
    assert choose_examples(ids, y_true, y_score, 0.4)["false positive"] == 3   # positive when score >= threshold


def _real_case(case: str, settings) -> tuple[np.ndarray, np.ndarray]:
    """The case's CT, MR T1 and PET as three phases: slices and mask crops (3, 3, size, size)."""
    images, masks = [], []
    for modality in MODALITIES:
        image = _read(STS / case / f"{modality}_image.nii.gz").numpy()
        tumour = (_read(STS / case / f"{modality}_mask.nii.gz").numpy() > 0).astype(np.uint8)
        slices, crop, z, _ = phase_slices(np.asarray(image), tumour, settings)
        assert slices.shape == crop.shape == (3, settings.image_size, settings.image_size), (case, modality)
        assert crop[1].any(), f"{case} {modality}: no tumour on the middle slice of the crop"
        assert np.isfinite(slices).all() and 0 <= z < image.shape[-1]
        images.append(slices)
        masks.append(crop)
    return np.stack(images), np.stack(masks)


@pytest.mark.parametrize("case", STS_CASES)
def test_real_cases_give_slices_and_maps(case):
    image, _ = _real_case(case, deep_settings("quick", image_size=48))
    model = _seeded_net()
    x = torch.from_numpy(image)
    assert x.shape == (3, 3, 48, 48)
    for p in range(3):
        cam = score_cam(model, x, phase=p)
        assert cam.shape == (48, 48)
        assert np.isfinite(cam).all() and cam.min() >= 0.0 and cam.max() <= 1.0


def test_overlay_figure_of_a_real_case(tmp_path: Path):
    import matplotlib.image

    image, mask = _real_case("STS_002", deep_settings("quick", image_size=48))
    model = _seeded_net()
    cams = [score_cam(model, torch.from_numpy(image), phase=p) for p in range(3)]
    row = {"title": "STS_002, untrained network (p = 0.50)", "image": image, "mask": mask, "cams": cams}
    heights = []
    for n_rows in (1, 2):
        path = tmp_path / f"overlay_{n_rows}.png"
        overlay_figure([row] * n_rows, path, phases=list(MODALITIES), dpi=100)
        picture = matplotlib.image.imread(path)
        assert picture.ndim == 3 and picture.shape[2] in (3, 4)
        heights.append(picture.shape[0])
    assert heights[1] > 1.8 * heights[0]
    with pytest.raises(ValueError, match="3 phases"):
        overlay_figure([dict(row, cams=cams[:2])], tmp_path / "bad.png", phases=list(MODALITIES))
