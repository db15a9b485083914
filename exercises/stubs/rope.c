    /* Exercise "rope" (docs/exercises.md): write this body, then rope()'s. */
    (void)cos_row; (void)sin_row; (void)pos; (void)head_dim; (void)theta;
/* next region */
    /* Exercise "rope" (docs/exercises.md): write this body. */
    (void)vec; (void)n_heads; (void)head_dim; (void)cos_row; (void)sin_row;
