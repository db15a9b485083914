    /* Exercise "adamw" (docs/exercises.md): write this body. */
    (void)m; (void)h; (void)lr; (void)t;
