"""MOSS (Huang et al., CVPR 2021): memory-oriented semi-supervised deraining."""
