"""The service layer: what every interface (CLI, web, API) calls."""
