"""PReNet family (Ren et al., CVPR 2019): networks in :mod:`methods.prenet.networks`, plugins in
:mod:`methods.prenet.plugin`."""
