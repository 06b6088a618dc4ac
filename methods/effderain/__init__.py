"""EfficientDerain (Guo et al., AAAI 2021): pixel-wise dilation filtering predicted by a kernel prediction net."""
