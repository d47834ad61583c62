"""Writes examples/input_224.npy: a deterministic synthetic 224x224 RGB test
image (smooth gradients and rings), normalized with the ImageNet mean/std,
float32 NCHW [1,3,224,224].  Run: python3 examples/make_input.py"""
import os
import numpy as np

H = W = 224
y, x = np.mgrid[0:H, 0:W].astype(np.float64) / (H - 1)
r = np.sqrt((x - 0.5) ** 2 + (y - 0.45) ** 2)
img = np.stack([0.5 + 0.5 * np.sin(12 * r), x, 0.3 + 0.6 * y * (1 - x)])  # [3,H,W] in [0,1]
mean = np.array([0.485, 0.456, 0.406])[:, None, None]
std = np.array([0.229, 0.224, 0.225])[:, None, None]
out = ((img - mean) / std).astype(np.float32)[None]
np.save(os.path.join(os.path.dirname(os.path.abspath(__file__)), "input_224.npy"), out)
