"""The figures: one style (:mod:`.style`), the per-pair figures (:mod:`.pairs`) and the
seed studies' figures (:mod:`.studies`)."""
