# src/poll: see the files for what they do.
