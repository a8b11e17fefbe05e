# src/daemon: see the files for what they do.
