"""The composition root: settings in, every service built and wired."""
