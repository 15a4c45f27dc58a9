"""Readers and writers of genome file formats; every result format of the tasks is written here."""
