"""Which rows (or coordinates) a step draws: the sampler table and noise factors (numpy
only, :mod:`.samplers`) and the mini-batch index streams the engine reads (torch,
:mod:`.batches`)."""
