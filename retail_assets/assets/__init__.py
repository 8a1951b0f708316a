"""Software-defined assets: sources (raw), warehouse (dimensions and facts), marts."""
