# src/sim: see the files for what they do.
