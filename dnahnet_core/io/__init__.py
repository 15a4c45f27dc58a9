"""Readers and writers of genome file formats."""
