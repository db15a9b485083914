    /* Exercise "kv-cache" (docs/exercises.md): this position's key and
     * value of every kv head join the cache. */
    (void)c; (void)s; (void)head_dim; (void)l; (void)pos;
