    /* Exercise "swiglu" (docs/exercises.md): write this body. */
    (void)gate; (void)up; (void)n;
