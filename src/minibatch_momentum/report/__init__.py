"""What a reader gets: the claims report (:mod:`.claims`), its HTML page (:mod:`.html`) and
the paper's generated inputs (:mod:`.paper`)."""
