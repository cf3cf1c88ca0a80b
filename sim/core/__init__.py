"""The vocabulary (codes), errors, keyed random streams and the compiler switch: imported by every layer, importing none."""
