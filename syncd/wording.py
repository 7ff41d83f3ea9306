"""Small helpers for the words syncd says to people."""

from __future__ import annotations


def counted(number: int, noun: str) -> str:
    """`1 highlight`, `2 highlights`: the nouns syncd counts all take an -s."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
