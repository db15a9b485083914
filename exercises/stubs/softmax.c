    /* Exercise "softmax" (docs/exercises.md): write this body. */
    (void)x; (void)n;
