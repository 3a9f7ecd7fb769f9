"""Tests of the pure billing arithmetic (a package so its test module names stay unique)."""
