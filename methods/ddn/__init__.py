"""DDN (Fu et al., CVPR 2017): the guided filter in :mod:`methods.ddn.guided_filter`, the network in
:mod:`methods.ddn.network`, the reader of the official ``network.mat`` in :mod:`methods.ddn.matfile` and
the plugin in :mod:`methods.ddn.plugin`."""
