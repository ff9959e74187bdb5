"""From runs to the quantities the claims are about: tuned iterations per batch size
(:mod:`.tuning`), the tables the claims and figures read (:mod:`.summary`), and critical
batches, parallel efficiency and speedup (:mod:`.scaling`)."""
