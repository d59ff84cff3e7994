"""One module per figure or table of the study; each reads stored results or the protocol."""
