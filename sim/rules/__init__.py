"""The behavioural rules as compiled kernels: barriers, fees, information, decisions, allocation, experience, life course. They see only the vocabulary and the streams."""
