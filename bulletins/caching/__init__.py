"""The bulletins' cache: `changes` is what the services say; `feed` keeps the officer's pages."""
