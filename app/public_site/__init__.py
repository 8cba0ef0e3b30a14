"""The resident site: the pages a village QR poster opens outside WeChat."""
