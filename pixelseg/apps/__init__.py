"""Applications built on the models and methods: one-click cutout (and, later, the web server)."""
