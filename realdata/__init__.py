"""Reg vs reg+cls on real tables: loaders, balanced splits, training, DIR-style evaluation."""
