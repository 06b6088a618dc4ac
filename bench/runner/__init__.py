"""The runner: datasets x methods -> outputs on disk -> metrics -> results store."""
