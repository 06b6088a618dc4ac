"""ESPNet (Mehta et al., ECCV 2018): network (:mod:`.network`) and the ``espnet`` task model (:mod:`.plugin`)."""
