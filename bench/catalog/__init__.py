"""What exists and whether it can be used here: one line per entry for `bench list`, everything about one
entry for `bench info`, and the weights files behind `bench weights`. Reads only the public registries and
plugin metadata (methods, task models, dataset cards, metrics)."""
