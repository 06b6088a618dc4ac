"""SAPNet (Zheng et al., WACV 2022): the network in :mod:`methods.sapnet.network`, the plugin in
:mod:`methods.sapnet.plugin`."""
