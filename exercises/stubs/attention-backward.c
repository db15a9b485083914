    /* Exercise "attention-backward" (docs/exercises.md): write this body. */
    (void)d_q; (void)d_k; (void)d_v; (void)d_out; (void)att; (void)q; (void)k; (void)v; (void)s;
