"""Transitions of a bulletin's life. Each is one atomic function taking `by=` and `now=`."""
