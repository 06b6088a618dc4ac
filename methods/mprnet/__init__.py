"""MPRNet (Zamir et al., CVPR 2021), deraining model, as released in swz30/MPRNet."""
