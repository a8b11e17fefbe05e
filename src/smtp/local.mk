# src/smtp: see the files for what they do.
