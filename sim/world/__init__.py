"""Building the world a scenario describes: the city, the families and their ties, the services and hubs, travel and candidate services, the outlay."""
