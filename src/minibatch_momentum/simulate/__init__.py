"""Running the methods: the batched engine over an (eta, beta) grid (:mod:`.engine`) and
the sweep shards the workflow writes (:mod:`.sweep`)."""
