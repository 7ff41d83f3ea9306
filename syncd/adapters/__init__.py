"""Vault formats behind one interface, and the file-system helpers they share."""
