# src/cli: see the files for what they do.
