"""RESCAN (Li et al., ECCV 2018): the network in :mod:`methods.rescan.network`, the plugin in
:mod:`methods.rescan.plugin`."""
