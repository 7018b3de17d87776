"""Spanish as our lenders write it (Mexico): Django's Spanish dates (day, month, year) with
Mexico's numbers, a comma between thousands and a point before the cents (1,650.50), not
Spain's. Django reads a format here first and falls back to its own Spanish module for
the others. tests/core/test_formats.py"""

DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
