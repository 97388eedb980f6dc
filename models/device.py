"""Pick the torch device from ``DYNAIRX_DEVICE`` (DESIGN.md, "Configuration": ``auto`` | ``cpu`` | ``cuda``)."""

from __future__ import annotations

import os

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def select_device(requested: str | None = None) -> torch.device:
    """The device to run on: ``requested`` if given, else ``DYNAIRX_DEVICE`` (default ``auto``).

    ``auto`` means CUDA when a GPU is visible, else CPU. Asking for ``cuda`` on a machine without one is an error
    rather than a silent fallback, so that a GPU job misconfigured onto a CPU node fails at once instead of
    running for hours.
    """
    choice = (requested or os.environ.get("DYNAIRX_DEVICE", "auto")).strip().lower() or "auto"
    if choice not in DEVICE_CHOICES:
        raise ValueError(f"DYNAIRX_DEVICE must be one of {', '.join(DEVICE_CHOICES)}, not {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("DYNAIRX_DEVICE=cuda but no CUDA device is available")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def uses_mixed_precision(device: torch.device) -> bool:
    """bfloat16 autocast on CUDA (no loss scaling needed, unlike float16); full precision on CPU."""
    return device.type == "cuda"
