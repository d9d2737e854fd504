"""Local fake servers that speak providers' wire APIs, for tests and the offline devstack."""
