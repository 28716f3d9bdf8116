"""Reading and writing at the edges of the library."""
