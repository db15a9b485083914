    /* Exercise "attention" (docs/exercises.md): write this body, then the
     * loop over the query heads in attend_heads(). */
    (void)out; (void)q; (void)keys; (void)values; (void)att; (void)n_pos; (void)head_dim;
/* next region */
    /* Exercise "attention", part 2: each query head's attention over
     * its kv head's cache, into s->xb. */
    (void)kv_mul; (void)s; (void)head_dim; (void)l; (void)pos;
