"""MSPFN (Jiang et al., CVPR 2020): multi-scale progressive fusion network, ported from the official TensorFlow code."""
