"""Tools built on the pipeline, not part of it: ``compare`` and ``baseline`` (read finished runs), ``regrade`` (other
graders on saved samples, in their own virtualenvs), ``distill`` (teacher traces for SFT data). They use the core
(``r1h.harness``) like any caller; the core never imports them."""
