"""The deep-learning arm: multi-phase tumour slices, ResNet-10/18/34 on MONAI blocks, the jointly
trained DLRCR fusion network and Score-CAM maps (methods.md section G).

- :mod:`.settings`: the profiles' settings (``quick`` for a CPU, ``paper`` the paper's budget).
- :mod:`.slices`: phases registered rigidly to the first (ANTsPy QuickRigid), three axial slices
  around the largest tumour cross-section per phase, cropped, resized, normalised, cached.
- :mod:`.networks`: the backbones and the multi-phase network.
- :mod:`.fit`: batched on-device augmentation, the seeded training loop with early stopping on
  an inner split of the development cohort.
- :mod:`.arm`: the whole arm for ``dlr train``: the three ResNets, DLRCR, their predictions,
  checkpoints, deep features and training curves.
- :mod:`.cam`: Score-CAM overlays (torchcam).
"""
