"""Syn2Real (Yasarla et al., CVPR 2020): semi-supervised deraining with Gaussian processes."""
