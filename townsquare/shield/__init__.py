"""The shield: layers that keep legitimate users served while abusive traffic is shed."""
