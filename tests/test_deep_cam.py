"""Score-CAM of the multi-phase network (modeling/deep/cam.py): a network trained on toy tumours
looks at the tumour, the maps are deterministic, and the three real IBSI soft-tissue sarcoma
cases give sane slices, maps and an overlay figure."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torchcam")
pytest.importorskip("monai")

import torch  # noqa: E402
from scipy.ndimage import binary_dilation  # noqa: E402

from dlr.core.stats.roc import rank_auc  # noqa: E402
from dlr.modeling.deep.cam import (CATEGORIES, cam_mass_inside, choose_examples, overlay_figure,  # noqa: E402
                               score_cam, upsample_centred)
from dlr.modeling.deep.fit import fit_network, predict  # noqa: E402
from dlr.modeling.deep.networks import MultiPhaseNet  # noqa: E402
from dlr.modeling.deep.settings import deep_settings  # noqa: E402
from dlr.modeling.deep.slices import _read, phase_slices  # noqa: E402

from conftest import DATA  # noqa: E402

STS = DATA / "real" / "ibsi_sts_mr_ct_pet"
STS_CASES = ("STS_002", "STS_019", "STS_025")
MODALITIES = ("CT", "MR_T1", "PET")


def _toy_tumours(*, seed: int, size: int = 32, texture: float = 2.0, noise: float = 0.5):
    """80 toy patients, 3 phases x 3 slices x size x size: Gaussian noise, a bright disc tumour
    (radius 5-8 px, in the mask) whose inside is strongly textured (+-texture per pixel) for
    label 1 and smooth for label 0, and a dark, always textured decoy disc of the same sizes
    elsewhere; the same discs in every phase and slice. Patients 0-59 (30 per label) train,
    60-79 (10 per label) are held out.

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


def _with_mask(x, tumour):
    """The network's input: the phases and the tumour mask as the last channel."""
    return torch.cat([x, torch.from_numpy(tumour.max(axis=1, keepdims=True).astype(np.float32))], dim=1)


def _net(seed: int = 0) -> MultiPhaseNet:
    torch.manual_seed(seed)
    return MultiPhaseNet("ResNet10", 3, width=16, pool="tumour")


def _fit(x, y, settings):
    return fit_network(_net, x, y, np.arange(60), settings, seed=0, device=torch.device("cpu"))


def _mass_fractions(model, x, masks, patients) -> np.ndarray:
    """(patients, masks): the fraction of the middle slice's map inside each mask (dilated by 2)."""
    return np.array([[cam_mass_inside(cam, m[i, 0, 1], dilate=2) for m in masks]
                     for cam, i in ((score_cam(model, x[i, :, 1], batch_size=128), i) for i in patients)])


def test_a_trained_network_looks_at_the_tumour():
    x, tumour, decoy, y = _toy_tumours(seed=0)
    x = _with_mask(x, tumour)
    fitted = _fit(x, y, deep_settings("quick", steps=150))
    auc = rank_auc(y[60:], predict(fitted.model, x[60:]))
    assert auc > 0.8, f"the network did not learn the texture (held-out AUC {auc:.3f})"
    untrained = _net()                      # fit_network's starting point: the same weights, untrained
    cases = np.flatnonzero(y[60:] == 1) + 60   # held-out label-1 patients: their texture is the evidence
    inside, on_decoy = _mass_fractions(fitted.model, x, (tumour, decoy), cases).mean(axis=0)
    before = _mass_fractions(untrained, x, (tumour,), cases).mean()
    area = np.mean([binary_dilation(tumour[i, 0, 1], iterations=2).mean() for i in cases])
    # measured (data seed 0; ResNet-10, small stem, tumour pooling, 150 steps): 0.67 of the mass
    # inside the dilated tumour, 3.8 times its area fraction (0.18), against 0.18 on the equally
    # textured decoy and 0.31 before training
    assert inside > 1.5 * area, f"{inside:.3f} of the map inside, tumour area {area:.3f}"
    assert inside > on_decoy, f"{inside:.3f} inside the tumour, {on_decoy:.3f} on the decoy"
    assert inside > before, f"{inside:.3f} inside after training, {before:.3f} before"


def _cropped_tumours(*, seed: int, size: int = 48, texture: float = 2.0, noise: float = 0.5, radius=(10, 15)):
    """80 toy patients as the pipeline crops them (modeling/deep/slices.py: a field of view
    centred on the tumour): a disc of radius ``radius`` px near the centre of each crop, textured for label 1 and smooth for label 0, over a noisy background
    with a faint smooth gradient (the parenchyma) in each phase. Patients 0-59 train, 60-79 are
    held out. Returns the slices (torch), the tumour masks (uint8, same shape) and the labels."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([rng.permutation(np.repeat([0, 1], 30)), rng.permutation(np.repeat([0, 1], 10))])
    rows, cols = np.mgrid[:size, :size]
    x = np.empty((len(y), 3, 3, size, size), dtype=np.float32)
    tumour = np.zeros(x.shape, dtype=np.uint8)
    for i, label in enumerate(y):
        r = rng.uniform(*radius)
        centre = size / 2 + rng.uniform(-3, 3, 2)
        disc = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= r ** 2
        for p in range(3):
            slope = rng.normal(0, 0.01, 2)
            image = rng.normal(0.0, noise, (3, size, size)) + slope[0] * (rows - size / 2) + slope[1] * (cols - size / 2)
            inside = texture * rng.choice([-1.0, 1.0], (3, int(disc.sum()))) if label else 0.0
            image[:, disc] += 1.0 + inside
            x[i, p] = image
            tumour[i, p][:, disc] = 1
    return torch.from_numpy(x), tumour, y


def test_on_crops_like_the_pipelines_most_of_the_map_lies_in_the_dilated_tumour():
    """On crops like the pipeline's (a disc near the centre of each crop over a noisy background
    with a faint gradient), more than half of the trained network's Score-CAM mass lies inside
    the tumour mask dilated by 2 px, more than the region's share of the image (what a flat map
    would put there) and more than the untrained network's map.

    Measured (data seed 0; 32 px crops, discs of radius 6-10 px): 0.92 of the mass inside (median
    0.94), against the region's 0.33 of the image and 0.64 for the untrained network (whose
    tumour-pooled features already favour the tumour)."""
    x, tumour, y = _cropped_tumours(seed=0, size=32, radius=(6, 10))
    x = _with_mask(x, tumour)
    fitted = _fit(x, y, deep_settings("quick", steps=150))
    auc = rank_auc(y[60:], predict(fitted.model, x[60:]))
    assert auc > 0.8, f"the network did not learn the texture (held-out AUC {auc:.3f})"
    untrained = _net()
    cases = np.flatnonzero(y[60:] == 1) + 60
    trained = _mass_fractions(fitted.model, x, (tumour,), cases)[:, 0]
    before = _mass_fractions(untrained, x, (tumour,), cases)[:, 0]
    area = np.mean([binary_dilation(tumour[i, 0, 1], iterations=2).mean() for i in cases])
    assert trained.mean() > 0.5, f"{trained.mean():.3f} of the map inside the dilated tumour"
    assert trained.mean() > area + 0.05, f"{trained.mean():.3f} inside, the region's share {area:.3f}"
    assert trained.mean() > before.mean(), f"{trained.mean():.3f} after training, {before.mean():.3f} before"
    assert np.median(trained) > 0.5, f"median {np.median(trained):.3f}"


def test_score_cam_is_deterministic_and_leaves_the_model_as_it_was():
    model = _net()
    model.train()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 32, 32, generator=gen)
    x[3] = (x[3] > 0).float()            # the mask channel
    first = score_cam(model, x)
    second = score_cam(model, x)
    assert first.shape == (32, 32) and first.dtype == np.float64
    assert np.array_equal(first, second)
    assert first.min() == 0.0 and first.max() == 1.0
    assert all(m.training for m in model.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    with pytest.raises(ValueError, match="mask"):
        score_cam(model, x[:3])


def test_upsample_centred_puts_each_cell_on_its_receptive_field():
    """Cell i of a stride-8 map lands on pixel 8 i, where the gradient of the paper-stem ResNet-10's
    last stage centres (31.7 for cell 4 of an 8 x 8 map at 64 px, against 35.5 for the usual resize)."""
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
        volume = _read(STS / case / f"{modality}_image.nii.gz")
        tumour = (_read(STS / case / f"{modality}_mask.nii.gz").numpy() > 0).astype(np.uint8)
        slices, crop, z, _ = phase_slices(np.asarray(volume.numpy()), tumour, settings, tuple(volume.spacing))
        assert slices.shape == crop.shape == (3, settings.image_size, settings.image_size), (case, modality)
        assert crop[1].any(), f"{case} {modality}: no tumour on the middle slice of the crop"
        assert np.isfinite(slices).all() and 0 <= z < volume.shape[-1]
        images.append(slices)
        masks.append(crop)
    return np.stack(images), np.stack(masks)


# CT's background (soft tissue near 0 HU) has no positive level to divide by: these multimodal
# cases are z-scored per crop; the field of view is fixed (96 mm) as in the quick profile
REAL = {"image_size": 32, "normalise": "crop"}


@pytest.mark.parametrize("case", STS_CASES)
def test_real_cases_give_slices_and_maps(case):
    image, mask = _real_case(case, deep_settings("quick", **REAL))
    model = _net()
    x = torch.from_numpy(np.concatenate([image[:, 1], mask.max(axis=0)[1:2].astype(np.float32)]))
    assert x.shape == (4, 32, 32)
    cam = score_cam(model, x)
    assert cam.shape == (32, 32)
    assert np.isfinite(cam).all() and cam.min() >= 0.0 and cam.max() <= 1.0


def test_overlay_figure_of_a_real_case(tmp_path: Path):
    import matplotlib.image

    image, mask = _real_case("STS_002", deep_settings("quick", **REAL))
    model = _net()
    cam = score_cam(model, torch.from_numpy(np.concatenate([image[:, 1], mask.max(axis=0)[1:2].astype(np.float32)])))
    row = {"title": "STS_002, untrained network (p = 0.50)", "image": image, "mask": mask, "cams": [cam] * 3}
    heights = []
    for n_rows in (1, 2):
        path = tmp_path / f"overlay_{n_rows}.png"
        overlay_figure([row] * n_rows, path, phases=list(MODALITIES), dpi=100)
        picture = matplotlib.image.imread(path)
        assert picture.ndim == 3 and picture.shape[2] in (3, 4)
        heights.append(picture.shape[0])
    assert heights[1] > 1.8 * heights[0]
    with pytest.raises(ValueError, match="3 phases"):
        overlay_figure([dict(row, cams=[cam] * 2)], tmp_path / "bad.png", phases=list(MODALITIES))
