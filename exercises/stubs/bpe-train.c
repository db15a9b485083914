    /* Exercise "bpe-train" (docs/exercises.md): merge the word's symbols
     * (symbol[0 .. n), their pairs in pair[0 .. n - 1)) as the encoder
     * would, updating n. */
    (void)symbol;
