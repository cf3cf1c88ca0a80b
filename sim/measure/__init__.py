"""What is measured: the window accumulator and measures, intervals and paired differences, the patterns checked."""
