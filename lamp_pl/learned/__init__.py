"""Learned retrieval and attribution: per-item utilities from the generator (`score_items`), their
distillation into the dense encoder (`RetrieverModule`, ROPG-KD), and per-item attribution
(`attribute`). Everything reads the existing retrieval caches; nothing already built is recomputed."""
