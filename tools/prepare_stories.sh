#!/bin/sh
# prepare_stories.sh IN OUT — make TinyStories' train.txt readable as one
# document per story for `./train --docs blank`.
#
# In data/tinystories/train.txt a story's paragraphs are separated by a blank
# line, and one story follows the next on the very next line (no blank line
# in between). `./train --docs blank` starts a new document (with BOS) at
# every blank line, which would cut each story into paragraphs. So:
#   - a blank line (a paragraph break inside a story) is dropped, and the
#     paragraphs of a story stay on consecutive lines;
#   - a non-blank line right after a non-blank line starts a new story, so a
#     blank line is put in front of it.
# The words are untouched; only the newlines change.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 IN OUT" >&2; exit 1; }
awk '
  NF == 0 { previous_was_text = 0; next }          # paragraph break: drop it
  { if (previous_was_text) print ""; print; previous_was_text = 1 }
' "$1" > "$2"
