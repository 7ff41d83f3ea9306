"""Notes: parsing vault pages and rendering Readwise's export formats."""
