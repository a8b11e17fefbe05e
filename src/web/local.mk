# src/web: see the files for what they do.
